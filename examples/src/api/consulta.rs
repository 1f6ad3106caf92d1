//! Query-string parameters: a `Query` extractor whose rejections are JSON errors, and the
//! pagination parameters of the list routes.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use seedwork::domain::{Page, PageRequest};

use super::errores::ApiError;

/// The query string, parsed. A malformed one (e.g. `limit=abc`) is 400 with `{"error": …}`.
pub struct Consulta<T>(pub T);

impl<S, T> FromRequestParts<S> for Consulta<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Consulta(value)),
            Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text())),
        }
    }
}

/// The header that carries the next page's cursor.
pub const NEXT_CURSOR: HeaderName = HeaderName::from_static("x-next-cursor");

/// The pagination parameters of the list routes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size: 1 to 500 (default 50). Above 500, zero or not a number: 400.
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<usize>,
    /// The cursor: the last id of the previous page, as the `x-next-cursor` header of that page
    /// gave it. Absent or empty: the first page.
    pub after: Option<String>,
}

impl PageParams {
    /// The page requested; `Err` (400) for a limit of 0 or above
    /// [`PageRequest::MAX_LIMIT`] — refused, not clamped — and for a cursor that cannot be one
    /// ([`crate::texto::cursor`]: a control character such as NUL, or overlong).
    pub fn page(self) -> Result<PageRequest, ApiError> {
        if let Some(after) = &self.after {
            crate::texto::cursor("after", after)?;
        }
        let first = PageRequest::first(self.limit.unwrap_or(PageRequest::DEFAULT_LIMIT))?;
        Ok(match self.after.filter(|after| !after.is_empty()) {
            Some(after) => first.after(after),
            None => first,
        })
    }
}

/// A page answered as the contract's bare JSON list, the next cursor (percent-encoded, to be
/// passed back as `after`) in the `x-next-cursor` header when there is a next page.
pub fn page_response<T: Serialize>(page: Page<T>) -> Response {
    let mut response = Json(page.items).into_response();
    if let Some(next) = page.next {
        // Percent-encoded, an id is always a valid header value and decodes back when sent as
        // the `after` query parameter.
        if let Ok(value) = HeaderValue::from_str(&percent_encode(&next)) {
            response.headers_mut().insert(NEXT_CURSOR, value);
        }
    }
    response
}

/// Percent-encodes everything but the URL-unreserved characters (RFC 3986).
pub fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::percent_encode;

    #[test]
    fn cursors_are_percent_encoded() {
        assert_eq!(percent_encode("r-1_a.b~c"), "r-1_a.b~c");
        assert_eq!(percent_encode("a b/ñ"), "a%20b%2F%C3%B1");
    }
}
