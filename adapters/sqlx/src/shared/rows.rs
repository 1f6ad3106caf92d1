//! Messages as outbox rows, and back.

use std::collections::BTreeMap;

use seedwork::messaging::{Envelope, Message};
use seedwork::Error;

/// The columns of one outbox row, encoded.
pub(crate) struct OutboxColumns {
    pub(crate) message_id: String,
    pub(crate) topic: String,
    pub(crate) key: Option<String>,
    pub(crate) envelope: String,
    pub(crate) properties: String,
}

pub(crate) fn encode(message: &Message) -> Result<OutboxColumns, Error> {
    let codec = |e| Error::codec(message.envelope.message_type.clone(), e);
    Ok(OutboxColumns {
        message_id: message.envelope.id.clone(),
        topic: message.topic.clone(),
        key: message.key.clone(),
        envelope: serde_json::to_string(&message.envelope).map_err(codec)?,
        properties: serde_json::to_string(&message.properties).map_err(codec)?,
    })
}

pub(crate) fn decode(
    topic: String,
    key: Option<String>,
    envelope: &str,
    properties: &str,
) -> Result<Message, Error> {
    let envelope: Envelope<serde_json::Value> =
        serde_json::from_str(envelope).map_err(|e| Error::codec("outbox envelope", e))?;
    let properties: BTreeMap<String, String> =
        serde_json::from_str(properties).map_err(|e| Error::codec("outbox properties", e))?;
    Ok(Message {
        topic,
        key,
        envelope,
        properties,
    })
}
