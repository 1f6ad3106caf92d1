//! A JSON body extractor whose rejections are JSON errors naming the problem.

use axum::extract::{FromRequest, Request};
use axum::Json;
use serde::de::DeserializeOwned;

use super::errores::ApiError;

/// The request body, parsed as JSON. Malformed JSON is 400, a missing or mistyped field 422, a
/// wrong content type 415 and a body over the limit 413 — each with `{"error": …}`.
pub struct Cuerpo<T>(pub T);

impl<S, T> FromRequest<S> for Cuerpo<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Cuerpo(value)),
            Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text())),
        }
    }
}
