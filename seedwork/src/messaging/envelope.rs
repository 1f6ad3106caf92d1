use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The CloudEvents-style envelope every integration message travels in: the Python `Mensaje`
/// record, field for field and in the same order, with the payload in `data`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// The message's own id (a UUID v4 string); consumers deduplicate on it.
    pub id: String,
    /// When the fact happened, epoch milliseconds.
    pub time: i64,
    /// When the message entered the messaging system, epoch milliseconds.
    pub ingestion: i64,
    /// The payload schema version, `v1`, `v2`…
    pub specversion: String,
    /// The message type, e.g. `EventoReservaCreada`.
    #[serde(rename = "type")]
    pub message_type: String,
    /// The media type `data` was encoded with before it went on the wire.
    pub datacontenttype: String,
    /// The service that produced it.
    pub service_name: String,
    /// The payload.
    pub data: T,
}

impl<T> Envelope<T> {
    /// Wraps `data` in a fresh envelope (new id, time and ingestion set to now).
    pub fn new(
        message_type: impl Into<String>,
        specversion: impl Into<String>,
        service_name: impl Into<String>,
        data: T,
    ) -> Self {
        let now = now_millis();
        Envelope {
            id: Uuid::new_v4().to_string(),
            time: now,
            ingestion: now,
            specversion: specversion.into(),
            message_type: message_type.into(),
            datacontenttype: "application/json".into(),
            service_name: service_name.into(),
            data,
        }
    }

    /// Replaces the payload, keeping the envelope.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Envelope<U> {
        Envelope {
            id: self.id,
            time: self.time,
            ingestion: self.ingestion,
            specversion: self.specversion,
            message_type: self.message_type,
            datacontenttype: self.datacontenttype,
            service_name: self.service_name,
            data: f(self.data),
        }
    }
}

/// The current time as epoch milliseconds (the envelope's time unit).
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
