//! The `{id}` segment of a path: an extractor whose rejections are JSON errors naming the
//! problem.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::StatusCode;

use super::errores::ApiError;
use crate::texto;

/// The `{id}` of the route, percent-decoded and checked as an id ([`texto::identificador`]).
///
/// Axum's own `Path` answers a segment that does not decode (`%ff`, not UTF-8) in plain text;
/// this one answers 400 with `{"error": …}` like every other refusal. An id that cannot be an
/// id (blank, a NUL or another control character, over the length limit) is refused here, so
/// no handler, query or database sees it.
pub struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
        texto::identificador("id", &id)
            .map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, error.to_string()))?;
        Ok(Id(id))
    }
}
