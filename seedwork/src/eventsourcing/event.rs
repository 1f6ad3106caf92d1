//! Events as an event store keeps them.

use serde::{Deserialize, Serialize};

/// An event to append: its type, its schema version and its payload as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// The event's type (`ReservaCreada`).
    pub event_type: String,
    /// The version of its payload's schema (`v1`), for upcasting stored events.
    pub event_version: String,
    /// The payload.
    pub data: serde_json::Value,
    /// When it happened, in milliseconds since the Unix epoch.
    pub occurred_at: i64,
}

/// An event as stored: where it is in its stream and in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// The aggregate type the stream belongs to.
    pub stream_type: String,
    /// The aggregate's id.
    pub stream_id: String,
    /// Its version in the stream: 1 for the first event.
    pub version: u64,
    /// Its position among every event of the store, unique across streams. Positions are not
    /// contiguous; a reader following them with
    /// [`EventStore::read_all`](super::EventStore::read_all) never meets one below a position
    /// it has already read.
    pub position: u64,
    /// The event's type.
    pub event_type: String,
    /// The version of its payload's schema.
    pub event_version: String,
    /// The payload.
    pub data: serde_json::Value,
    /// When it happened, in milliseconds since the Unix epoch.
    pub occurred_at: i64,
}

/// An aggregate's state at a version of its stream, so that loading it replays only the
/// events after that version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The stream version the state includes.
    pub version: u64,
    /// The state, as JSON.
    pub state: serde_json::Value,
}
