//! Messages as outbox rows, and back.

use std::collections::BTreeMap;

use seedwork::messaging::{Envelope, Message};

use crate::error::SqlxError;

/// The columns of one outbox row, encoded.
pub(crate) struct OutboxColumns {
    pub(crate) message_id: String,
    pub(crate) topic: String,
    pub(crate) key: Option<String>,
    pub(crate) envelope: String,
    pub(crate) properties: String,
}

pub(crate) fn encode(message: &Message) -> Result<OutboxColumns, SqlxError> {
    let codec = |source| SqlxError::Encode {
        type_name: message.envelope.message_type.clone(),
        source,
    };
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
) -> Result<Message, SqlxError> {
    let corrupt = |type_name: &str| {
        let type_name = type_name.to_string();
        move |source| SqlxError::Decode {
            type_name,
            table: "seedwork_outbox",
            source,
        }
    };
    let envelope: Envelope<serde_json::Value> =
        serde_json::from_str(envelope).map_err(corrupt("outbox envelope"))?;
    let properties: BTreeMap<String, String> =
        serde_json::from_str(properties).map_err(corrupt("outbox properties"))?;
    Ok(Message {
        topic,
        key,
        envelope,
        properties,
    })
}
