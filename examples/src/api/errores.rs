//! How errors become HTTP answers: always a JSON body `{"error": "…"}`, never a panic, 503 while
//! the store or broker is unavailable, and 500 only for faults of the system.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use seedwork::{Error, ErrorKind};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer: `{"error": "…"}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person to read.
    pub error: String,
}

/// An error answered over HTTP.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// An error with an explicit status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// The status it answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let status = match error.kind() {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(%error, "request refused while a backend is unavailable");
            return ApiError::new(status, "temporarily unavailable; retry later");
        }
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(%error, "request failed");
            return ApiError::new(status, "internal error; see the service log");
        }
        ApiError::new(status, error.to_string())
    }
}

impl From<seedwork::domain::DomainError> for ApiError {
    fn from(error: seedwork::domain::DomainError) -> Self {
        ApiError::from(Error::Domain(error))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}
