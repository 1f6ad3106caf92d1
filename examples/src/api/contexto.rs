//! The conversation a request belongs to: its correlation id (`x-correlation-id`, given or
//! generated, and answered on every response) and its baggage (the W3C `baggage` header).

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use seedwork::application::Context;

use super::errores::ApiError;

/// The header that names the conversation.
pub const CORRELATION_HEADER: &str = "x-correlation-id";
/// The W3C header that carries the conversation's baggage (`k=v,k2=v2`).
pub const BAGGAGE_HEADER: &str = "baggage";
/// At most this many baggage items per request.
pub const MAX_BAGGAGE_ITEMS: usize = 16;

/// A usable correlation id: 1 to 128 visible ASCII characters.
fn usable(value: &HeaderValue) -> Option<&str> {
    value
        .to_str()
        .ok()
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
}

/// Gives every request a correlation id — its own when usable, a new one otherwise — and
/// answers it in the response's `x-correlation-id`, so a client that sent none learns the id
/// of the conversation it started (`GET /sagas/{id}` takes it).
pub async fn correlacion(mut request: Request, next: Next) -> Response {
    let id = match request.headers().get(CORRELATION_HEADER).and_then(usable) {
        Some(id) => id.to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let value = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("-"));
    request
        .headers_mut()
        .insert(CORRELATION_HEADER, value.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(CORRELATION_HEADER, value);
    response
}

fn key_ok(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn value_ok(value: &str) -> bool {
    (1..=256).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b",;\"\\".contains(&b))
}

/// The request's conversation: its correlation id (set by [`correlacion`]) and its baggage.
/// A baggage header that does not parse, or carries more than [`MAX_BAGGAGE_ITEMS`], is a
/// 400.
pub fn contexto(headers: &HeaderMap) -> Result<Context, ApiError> {
    let mut context = Context::new();
    if let Some(id) = headers.get(CORRELATION_HEADER).and_then(usable) {
        context = context.correlation_id(id);
    }
    let mut items = 0;
    for header in headers.get_all(BAGGAGE_HEADER) {
        let text = header.to_str().map_err(|_| malformed("not ASCII"))?;
        for member in text.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            // Properties after `;` are allowed by the standard and ignored here.
            let pair = member.split(';').next().unwrap_or_default();
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| malformed(&format!("`{member}` is not key=value")))?;
            let (key, value) = (key.trim(), value.trim());
            if !key_ok(key) || !value_ok(value) {
                return Err(malformed(&format!("`{member}` is not a valid item")));
            }
            items += 1;
            if items > MAX_BAGGAGE_ITEMS {
                return Err(malformed(&format!("more than {MAX_BAGGAGE_ITEMS} items")));
            }
            context = context.baggage(key, value);
        }
    }
    Ok(context)
}

fn malformed(why: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!("malformed baggage header: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn baggage_items_and_the_correlation_are_read() {
        let context = contexto(&headers(&[
            (CORRELATION_HEADER, "c-1"),
            (BAGGAGE_HEADER, "demo-falla=pago, tenant=acme;ttl=3"),
        ]))
        .unwrap();
        let expected = Context::new()
            .correlation_id("c-1")
            .baggage("demo-falla", "pago")
            .baggage("tenant", "acme");
        assert_eq!(context, expected);
    }

    #[test]
    fn malformed_baggage_is_refused() {
        for bad in [
            "novalue",
            "=x",
            "k=",
            "k=a b",
            &"k=v,".repeat(17),
            "k\u{1}=v",
        ] {
            let Ok(value) = HeaderValue::from_str(bad) else {
                continue;
            };
            let mut map = HeaderMap::new();
            map.insert(BAGGAGE_HEADER, value);
            assert!(contexto(&map).is_err(), "{bad:?} is refused");
        }
    }
}
