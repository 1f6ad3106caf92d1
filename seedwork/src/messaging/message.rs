use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::Envelope;
use crate::error::{Error, Result};

/// The message property that carries the correlation id from the HTTP request to every
/// consumer. A message handled without one starts a conversation: what its handling writes
/// carries its id as the correlation id.
pub const CORRELATION_ID: &str = "correlation_id";

/// The message property that names the message whose handling wrote this one (its `id`):
/// with [`CORRELATION_ID`], a conversation's messages form a tree a saga log can show.
pub const CAUSATION_ID: &str = "causation_id";

/// The prefix of the message properties that carry the conversation's *baggage*: small
/// key-value pairs set once (by the HTTP request, say) and passed on, like the correlation id,
/// from every message handled to every message its handling writes (a tenant, a user, a
/// demonstration switch). Property `baggage-<key>` holds key `<key>`.
pub const BAGGAGE_PREFIX: &str = "baggage-";

/// Whether a message states a fact or asks for an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// An integration event (`EventoIntegracion`).
    Event,
    /// An integration command (`ComandoIntegracion`).
    Command,
}

/// A payload type that travels between services: where it goes, what it is called on the wire,
/// and which schema version it is.
///
/// Derive it with `#[derive(IntegrationEvent)]` or `#[derive(IntegrationCommand)]` and
/// `#[integration(topic = "...", version = "v1")]`, or implement it by hand:
///
/// ```
/// use seedwork::messaging::{IntegrationEvent, IntegrationMessage, MessageKind};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct OrderShipped { order_id: String }
///
/// impl IntegrationMessage for OrderShipped {
///     const TOPIC: &'static str = "orders";
///     const TYPE: &'static str = "OrderShipped";
///     const VERSION: &'static str = "v1";
///     const KIND: MessageKind = MessageKind::Event;
///     fn key(&self) -> Option<String> { Some(self.order_id.clone()) }
/// }
/// impl IntegrationEvent for OrderShipped {}
/// ```
pub trait IntegrationMessage: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The topic it is published to.
    const TOPIC: &'static str;
    /// The type name written into the envelope (`type`).
    const TYPE: &'static str;
    /// The schema version (`v1`, `v2`…), written into the envelope's `specversion`.
    const VERSION: &'static str;
    /// Event or command.
    const KIND: MessageKind;

    /// Every message type this Rust type reads and writes: `[TYPE]` for a struct; for an enum
    /// of several message types (one topic, a union schema), each variant's type.
    const TYPES: &'static [&'static str] = &[Self::TYPE];

    /// The ordering key: messages with the same key are delivered in order. Usually the
    /// aggregate id; `None` when order does not matter.
    fn key(&self) -> Option<String> {
        None
    }

    /// The message type of this value: [`TYPE`](Self::TYPE), or its variant's for an enum.
    fn message_type(&self) -> &'static str {
        Self::TYPE
    }

    /// The payload as JSON, the envelope's `data`: the serde form of the value, or of its
    /// variant's payload for an enum (so each type's data has the same shape whether it
    /// travels alone or as part of an enum).
    fn to_data(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(self)
    }

    /// Reads the `data` of a message of `message_type` (one of [`TYPES`](Self::TYPES)): for an
    /// enum, the variant the type names, never the first one the data happens to fit.
    fn from_data(message_type: &str, data: &serde_json::Value) -> serde_json::Result<Self> {
        let _ = message_type;
        Self::deserialize(data)
    }
}

/// Marker for integration events (facts other services may react to).
pub trait IntegrationEvent: IntegrationMessage {}

/// Marker for integration commands (requests another service should carry out).
pub trait IntegrationCommand: IntegrationMessage {}

/// A message in transit, independent of the wire codec: topic, ordering key, envelope with a
/// JSON payload, and string properties (correlation id and the like).
///
/// It is what the outbox stores, what a [`Publisher`](super::Publisher) sends and what a
/// [`Consumer`](super::Consumer) delivers; adapters translate `data` to Avro or JSON bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Destination topic.
    pub topic: String,
    /// Ordering key (see [`IntegrationMessage::key`]).
    pub key: Option<String>,
    /// The envelope; `data` is the payload as a JSON value.
    pub envelope: Envelope<serde_json::Value>,
    /// Extra properties that travel beside the payload.
    pub properties: BTreeMap<String, String>,
}

impl Message {
    /// Builds the message for a typed payload, in a fresh envelope from `service_name`.
    pub fn encode<M: IntegrationMessage>(payload: &M, service_name: &str) -> Result<Message> {
        let message_type = payload.message_type();
        let data = payload
            .to_data()
            .map_err(|e| Error::codec(message_type, e))?;
        Ok(Message {
            topic: M::TOPIC.to_string(),
            key: payload.key(),
            envelope: Envelope::new(message_type, M::VERSION, service_name, data),
            properties: BTreeMap::new(),
        })
    }

    /// Decodes the payload as `M`, keeping the envelope. Fails with [`Error::InvalidInput`] when
    /// the message is of another type or its data does not match: the sender's fault.
    ///
    /// A message of an older version than `M::VERSION` is first brought up to it through the
    /// registered [upcasters](super::upcast) (the envelope keeps the version that arrived).
    pub fn decode<M: IntegrationMessage>(&self) -> Result<Envelope<M>> {
        let arrived = self.envelope.message_type.as_str();
        let upcast = super::upcast::upcast(
            arrived,
            &self.envelope.specversion,
            M::VERSION,
            &self.envelope.data,
        )
        .map_err(|e| Error::invalid_input(arrived, e))?;
        let (message_type, data) = match &upcast {
            Some((message_type, data)) => (*message_type, data),
            None => (arrived, &self.envelope.data),
        };
        if !M::TYPES.contains(&message_type) {
            return Err(Error::invalid_input(
                M::TYPE,
                format!("message {} is of type `{message_type}`", self.envelope.id),
            ));
        }
        let data =
            M::from_data(message_type, data).map_err(|e| Error::invalid_input(message_type, e))?;
        Ok(self.envelope.clone().map(|_| data))
    }

    /// The message id (the envelope's `id`).
    pub fn id(&self) -> &str {
        &self.envelope.id
    }

    /// The correlation id, if the producer set one.
    pub fn correlation_id(&self) -> Option<&str> {
        self.properties.get(CORRELATION_ID).map(String::as_str)
    }

    /// The id of the message that caused this one, if it was written while handling one.
    pub fn causation_id(&self) -> Option<&str> {
        self.properties.get(CAUSATION_ID).map(String::as_str)
    }

    /// The conversation's baggage the message carries (see [`BAGGAGE_PREFIX`]), by key.
    pub fn baggage(&self) -> impl Iterator<Item = (&str, &str)> {
        self.properties.iter().filter_map(|(property, value)| {
            property
                .strip_prefix(BAGGAGE_PREFIX)
                .map(|key| (key, value.as_str()))
        })
    }

    /// Sets a property, returning the message (builder style).
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Ping {
        n: u32,
    }
    impl IntegrationMessage for Ping {
        const TOPIC: &'static str = "pings";
        const TYPE: &'static str = "Ping";
        const VERSION: &'static str = "v1";
        const KIND: MessageKind = MessageKind::Event;
        fn key(&self) -> Option<String> {
            Some(self.n.to_string())
        }
    }

    #[derive(Serialize, Deserialize, Debug)]
    struct Pong {
        n: u32,
    }
    impl IntegrationMessage for Pong {
        const TOPIC: &'static str = "pongs";
        const TYPE: &'static str = "Pong";
        const VERSION: &'static str = "v2";
        const KIND: MessageKind = MessageKind::Event;
    }

    #[test]
    fn encode_fills_the_envelope_and_decode_round_trips() {
        let message = Message::encode(&Ping { n: 7 }, "svc").unwrap();
        assert_eq!(message.topic, "pings");
        assert_eq!(message.key.as_deref(), Some("7"));
        assert_eq!(message.envelope.message_type, "Ping");
        assert_eq!(message.envelope.specversion, "v1");
        assert_eq!(message.envelope.service_name, "svc");
        assert_eq!(message.envelope.data, serde_json::json!({"n": 7}));
        assert_eq!(message.decode::<Ping>().unwrap().data, Ping { n: 7 });
    }

    #[test]
    fn decoding_as_another_type_is_a_codec_error() {
        let message = Message::encode(&Ping { n: 7 }, "svc").unwrap();
        let err = message.decode::<Pong>().unwrap_err();
        assert!(matches!(err, Error::InvalidInput { ref type_name, .. } if type_name == "Pong"));
    }

    #[test]
    fn malformed_data_is_a_codec_error_not_a_panic() {
        let mut message = Message::encode(&Ping { n: 7 }, "svc").unwrap();
        message.envelope.data = serde_json::json!({"n": "seven"});
        assert!(matches!(
            message.decode::<Ping>(),
            Err(Error::InvalidInput { .. })
        ));
    }

    #[test]
    fn envelope_serializes_with_the_original_field_names_in_order() {
        let message = Message::encode(&Ping { n: 1 }, "svc").unwrap();
        let text = serde_json::to_string(&message.envelope).unwrap();
        let order = [
            "\"id\"",
            "\"time\"",
            "\"ingestion\"",
            "\"specversion\"",
            "\"type\"",
            "\"datacontenttype\"",
            "\"service_name\"",
            "\"data\"",
        ];
        let positions: Vec<usize> = order.iter().map(|f| text.find(f).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    }
}
