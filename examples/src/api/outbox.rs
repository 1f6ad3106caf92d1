//! The operators' view of the outbox: messages the relay parked after failing to publish them
//! for a reason of their own (a payload the topic's schema refuses, a stored row that no longer
//! reads back). Each can be listed with its error, re-driven once the cause is fixed, or
//! discarded. Later messages of a parked message's key wait behind it; other keys flow.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use seedwork::messaging::{OutboxStore, ParkedEntry};

use super::errores::{ApiError, ErrorBody};

/// The outbox the routes work on; `None` when the router was built without one.
#[derive(Clone, Default)]
pub struct ParkedOutbox(pub Option<Arc<dyn OutboxStore>>);

impl ParkedOutbox {
    fn store(&self) -> Result<&Arc<dyn OutboxStore>, ApiError> {
        self.0
            .as_ref()
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "this process has no outbox"))
    }
}

/// Largest page of parked messages.
pub const MAX_PARKED_PAGE: usize = 500;

/// Which parked messages to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ParkedParams {
    /// Only those after this sequence (the last one of the previous page).
    pub after: Option<u64>,
    /// How many (1 to 500, default 50).
    pub limit: Option<usize>,
}

/// A parked message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParkedBody {
    /// Its position in the outbox (what the other routes take).
    pub sequence: u64,
    /// The topic it was meant for.
    pub topic: String,
    /// Its ordering key, if any: later messages with it wait.
    pub key: Option<String>,
    /// Failed publishes, outages not counted.
    pub attempts: u32,
    /// What the last failed publish reported.
    pub last_error: String,
    /// When it was parked (epoch milliseconds).
    pub parked_at: i64,
    /// The envelope, or null when the stored row no longer reads back.
    #[schema(value_type = Option<Object>)]
    pub envelope: Option<serde_json::Value>,
}

impl From<ParkedEntry> for ParkedBody {
    fn from(entry: ParkedEntry) -> Self {
        ParkedBody {
            sequence: entry.sequence,
            topic: entry.topic,
            key: entry.key,
            attempts: entry.attempts,
            last_error: entry.last_error,
            parked_at: entry.parked_at,
            envelope: entry
                .message
                .and_then(|message| serde_json::to_value(message.envelope).ok()),
        }
    }
}

/// The `{sequence}` of the path; every refusal is a JSON 400.
fn sequence_of(path: Result<Path<String>, PathRejection>) -> Result<u64, ApiError> {
    let Path(raw) =
        path.map_err(|rejection| ApiError::new(StatusCode::BAD_REQUEST, rejection.body_text()))?;
    raw.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid sequence: expected a non-negative integer",
        )
    })
}

/// The messages the relay parked, oldest first.
#[utoipa::path(get, path = "/outbox/parked", tag = "system", params(ParkedParams),
    responses(
        (status = 200, description = "Parked messages, oldest first", body = [ParkedBody]),
        (status = 400, description = "A bad limit", body = ErrorBody),
        (status = 404, description = "This process has no outbox", body = ErrorBody),
    ))]
pub(super) async fn parked(
    Extension(outbox): Extension<ParkedOutbox>,
    params: Result<Query<ParkedParams>, QueryRejection>,
) -> Result<Json<Vec<ParkedBody>>, ApiError> {
    let Query(params) = params
        .map_err(|rejection| ApiError::new(StatusCode::BAD_REQUEST, rejection.body_text()))?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=MAX_PARKED_PAGE).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid limit: must be between 1 and {MAX_PARKED_PAGE}"),
        ));
    }
    let entries = outbox.store()?.parked(params.after, limit).await?;
    Ok(Json(entries.into_iter().map(ParkedBody::from).collect()))
}

/// Puts a parked message back to be published (its failure count starts again).
#[utoipa::path(post, path = "/outbox/parked/{sequence}/redrive", tag = "system",
    params(("sequence" = u64, Path, description = "The parked message's sequence")),
    responses(
        (status = 204, description = "Back in line to be published"),
        (status = 400, description = "Not a sequence", body = ErrorBody),
        (status = 404, description = "No parked message has that sequence", body = ErrorBody),
    ))]
pub(super) async fn redrive(
    Extension(outbox): Extension<ParkedOutbox>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let sequence = sequence_of(path)?;
    outbox.store()?.redrive(sequence).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Deletes a parked message for good; the messages of its key that waited behind it go on.
#[utoipa::path(delete, path = "/outbox/parked/{sequence}", tag = "system",
    params(("sequence" = u64, Path, description = "The parked message's sequence")),
    responses(
        (status = 204, description = "Discarded"),
        (status = 400, description = "Not a sequence", body = ErrorBody),
        (status = 404, description = "No parked message has that sequence", body = ErrorBody),
    ))]
pub(super) async fn discard(
    Extension(outbox): Extension<ParkedOutbox>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let sequence = sequence_of(path)?;
    outbox.store()?.discard(sequence).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
