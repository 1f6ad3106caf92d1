//! `GET /sagas/{id}`: the saga log of a conversation — every saga instance that follows the
//! correlation id, where it is, and every step it saw.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use seedwork::application::Bus;
use seedwork::saga::{SagaRecord, SagaStore};

use super::errores::{ApiError, ErrorBody};
use super::ruta::Id;
use super::Answer;

/// One saga instance of a conversation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SagaDto {
    /// The saga (`reservas`).
    pub saga: String,
    /// The conversation it follows.
    pub correlation_id: String,
    /// `running`, `compensating`, `completed` or `compensated`.
    pub status: String,
    /// The step it is at (awaited while running; whose compensation is awaited while
    /// compensating).
    pub paso: String,
    /// When the awaited step times out, epoch milliseconds.
    pub deadline: Option<i64>,
    /// Why it failed, once it has.
    pub failure: Option<String>,
    /// The saga's own state.
    #[schema(value_type = Object)]
    pub state: serde_json::Value,
    /// Every step seen, oldest first.
    pub log: Vec<PasoDto>,
}

/// One entry of a saga's log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PasoDto {
    /// When, epoch milliseconds.
    pub at: i64,
    /// The step.
    pub paso: String,
    /// What happened: `started`, `command_sent`, `succeeded`, `failed`, `timed_out`,
    /// `compensation_sent`, `compensated`, `completed`, `aborted`, `ignored`, `observed`.
    pub kind: String,
    /// The message received or sent (empty for a deadline).
    pub message_type: String,
    /// Its id.
    pub message_id: Option<String>,
    /// A failure's reason, or why a message was ignored.
    pub detail: Option<String>,
}

fn kind_name(kind: seedwork::saga::SagaLogKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl SagaDto {
    /// The view of a stored instance; its step is the one its latest log entry names.
    pub fn from_record(record: SagaRecord) -> Self {
        let paso = record
            .log
            .iter()
            .rev()
            .find(|entry| !entry.step.is_empty())
            .map(|entry| entry.step.clone())
            .unwrap_or_default();
        SagaDto {
            saga: record.saga,
            correlation_id: record.correlation_id,
            status: record.status.to_string(),
            paso,
            deadline: record.deadline,
            failure: record.failure,
            state: record.state,
            log: record
                .log
                .into_iter()
                .map(|entry| PasoDto {
                    at: entry.at,
                    paso: entry.step,
                    kind: kind_name(entry.kind),
                    message_type: entry.message_type,
                    message_id: entry.message_id,
                    detail: entry.detail,
                })
                .collect(),
        }
    }
}

/// The sagas of a conversation, by the correlation id the request that started it carried (or
/// was given: every response names it in `x-correlation-id`).
#[utoipa::path(get, path = "/sagas/{id}", tag = "sagas",
    params(("id" = String, Path, description = "The correlation id")),
    responses(
        (status = 200, description = "The conversation's saga instances, by saga name", body = [SagaDto]),
        (status = 400, description = "An id that cannot be one: blank, a control character such as NUL, over 128 characters, or not UTF-8", body = ErrorBody),
        (status = 404, description = "No saga follows this conversation", body = ErrorBody),
    ))]
pub(super) async fn saga_log(State(bus): State<Bus>, Id(id): Id) -> Answer<Json<Vec<SagaDto>>> {
    let Some(store) = bus.resources().get::<dyn SagaStore>() else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no saga runs here"));
    };
    let sagas = sagas_of(&store, &id).await?;
    if sagas.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no saga follows conversation `{id}`"),
        ));
    }
    Ok(Json(sagas))
}

/// The saga instances of conversation `id`, as the API shows them.
pub async fn sagas_of(store: &Arc<dyn SagaStore>, id: &str) -> seedwork::Result<Vec<SagaDto>> {
    Ok(store
        .find(id)
        .await?
        .into_iter()
        .map(SagaDto::from_record)
        .collect())
}
