//! What the saga store keeps of one saga instance: its position, its state and its log.

use serde::{Deserialize, Serialize};

/// Where a saga instance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SagaStatus {
    /// Waiting for the reply to the command of the current step.
    Running,
    /// A step failed (or timed out): the compensations of the earlier steps are being sent,
    /// and the current step is the one whose compensation is awaited.
    Compensating,
    /// Every step succeeded. Terminal.
    Completed,
    /// A step failed and every compensation it called for was sent (and, where the step asks
    /// for it, confirmed). Terminal.
    Compensated,
}

impl SagaStatus {
    /// Whether nothing more will happen to the instance.
    pub fn is_terminal(self) -> bool {
        matches!(self, SagaStatus::Completed | SagaStatus::Compensated)
    }

    /// The status as stored (`running`, `compensating`, `completed`, `compensated`).
    pub fn as_str(self) -> &'static str {
        match self {
            SagaStatus::Running => "running",
            SagaStatus::Compensating => "compensating",
            SagaStatus::Completed => "completed",
            SagaStatus::Compensated => "compensated",
        }
    }
}

impl std::fmt::Display for SagaStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a log entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SagaLogKind {
    /// The starting message created the instance.
    Started,
    /// A step's command was written to the outbox.
    CommandSent,
    /// A step's success reply arrived (or, for a first step without a command, the starting
    /// message stands for it).
    Succeeded,
    /// A step's failure reply arrived.
    Failed,
    /// A step's deadline passed with no reply.
    TimedOut,
    /// A step's compensation was written to the outbox.
    CompensationSent,
    /// A step's compensation was confirmed.
    Compensated,
    /// The last step succeeded.
    Completed,
    /// Every compensation was sent: the saga ended without its goal.
    Aborted,
    /// A message of the conversation that the instance did not expect where it was (a late
    /// reply after a deadline, a duplicate, an event of another step): recorded, nothing done.
    Ignored,
    /// A message of a [`Choreography`](super::Choreography)'s conversation, seen.
    Observed,
}

/// One line of a saga's log: what happened, at which step, because of or by which message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaLogEntry {
    /// When, in milliseconds since the Unix epoch.
    pub at: i64,
    /// The step's name.
    pub step: String,
    /// What happened.
    pub kind: SagaLogKind,
    /// The type of the message received or sent (`ReservaPagada`, `ComandoPagarReserva`…);
    /// empty for entries no message caused (a deadline).
    pub message_type: String,
    /// The id of that message, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// A failure's reason, or why a message was ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One saga instance as the [`SagaStore`](super::SagaStore) keeps it: which saga, which
/// conversation (correlation id), where it is, its state and everything that happened to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SagaRecord {
    /// The saga's name (its [`Orchestration`](super::Orchestration)'s).
    pub saga: String,
    /// The conversation the instance follows: every message it reacts to and sends carries it.
    pub correlation_id: String,
    /// The stored version (0 = never stored), for optimistic concurrency; kept beside the
    /// document, not in it.
    #[serde(skip)]
    pub version: u64,
    /// Where the instance is.
    pub status: SagaStatus,
    /// The index of the current step (the one awaited while running; the one whose
    /// compensation is awaited while compensating).
    pub step: usize,
    /// When the current step times out, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<i64>,
    /// The saga's own state, as JSON.
    pub state: serde_json::Value,
    /// Why the saga failed, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Everything that happened, in order.
    pub log: Vec<SagaLogEntry>,
}

impl SagaRecord {
    /// A new, never-stored instance of `saga` for `correlation_id`, at its first step.
    pub fn new(
        saga: impl Into<String>,
        correlation_id: impl Into<String>,
        state: serde_json::Value,
    ) -> Self {
        SagaRecord {
            saga: saga.into(),
            correlation_id: correlation_id.into(),
            version: 0,
            status: SagaStatus::Running,
            step: 0,
            deadline: None,
            state,
            failure: None,
            log: Vec::new(),
        }
    }

    /// The log entries of one kind, in order (a convenience for tests and views).
    pub fn entries(&self, kind: SagaLogKind) -> impl Iterator<Item = &SagaLogEntry> {
        self.log.iter().filter(move |entry| entry.kind == kind)
    }
}

/// Which instance: a saga's name and a correlation id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SagaKey {
    /// The saga's name.
    pub saga: String,
    /// The conversation.
    pub correlation_id: String,
}
