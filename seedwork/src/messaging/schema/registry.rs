//! The message schemas linked into the binary, submitted by the integration derives.

use super::Schema;
use crate::messaging::{IntegrationMessage, MessageKind};

/// One integration message type's contract: topic, type, version and payload schema.
///
/// `#[derive(IntegrationEvent)]` and `#[derive(IntegrationCommand)]` submit one to
/// [`inventory`] for every non-generic payload type; [`registered`] lists them. A broker
/// adapter reads them to announce, without a declaration, the schema of each topic.
#[derive(Clone, Copy)]
pub struct MessageSchema {
    /// The topic the type is published to.
    pub topic: &'static str,
    /// The message type (`EventoReservaCreada`).
    pub message_type: &'static str,
    /// The schema version (`v1`, `v2`…).
    pub version: &'static str,
    /// Event or command.
    pub kind: MessageKind,
    payload: fn() -> Schema,
}

impl MessageSchema {
    /// The contract of `M`, whose payload schema is `payload` (const, for `inventory::submit!`).
    pub const fn new(
        topic: &'static str,
        message_type: &'static str,
        version: &'static str,
        kind: MessageKind,
        payload: fn() -> Schema,
    ) -> MessageSchema {
        MessageSchema {
            topic,
            message_type,
            version,
            kind,
            payload,
        }
    }

    /// The contract of an integration message type whose payload has a schema.
    pub fn of<M: IntegrationMessage + super::AvroSchema>() -> MessageSchema {
        MessageSchema::new(M::TOPIC, M::TYPE, M::VERSION, M::KIND, M::avro_schema)
    }

    /// The payload's schema.
    pub fn payload(&self) -> Schema {
        (self.payload)()
    }
}

impl std::fmt::Debug for MessageSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageSchema")
            .field("topic", &self.topic)
            .field("message_type", &self.message_type)
            .field("version", &self.version)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

inventory::collect!(MessageSchema);

/// Every message schema linked into the binary, ordered by topic, type and version (so that
/// what an adapter builds from them does not depend on link order). A type registered twice
/// (the same topic, type and version) appears once.
pub fn registered() -> Vec<MessageSchema> {
    let mut all: Vec<MessageSchema> = inventory::iter::<MessageSchema>
        .into_iter()
        .copied()
        .collect();
    all.sort_by(|a, b| {
        (a.topic, a.message_type, version_order(a.version)).cmp(&(
            b.topic,
            b.message_type,
            version_order(b.version),
        ))
    });
    all.dedup_by(|a, b| {
        a.topic == b.topic && a.message_type == b.message_type && a.version == b.version
    });
    all
}

/// `v2` before `v10`: versions compare by their number when they have one.
fn version_order(version: &str) -> (u64, &str) {
    let number = version
        .trim_start_matches(['v', 'V'])
        .parse::<u64>()
        .unwrap_or(u64::MAX);
    (number, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_by_number() {
        let mut versions = vec!["v10", "v2", "v1", "beta"];
        versions.sort_by_key(|v| version_order(v));
        assert_eq!(versions, ["v1", "v2", "v10", "beta"]);
    }
}
