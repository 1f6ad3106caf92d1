//! How a seedwork [`Message`] becomes a Pulsar message and back.
//!
//! The wire form is chosen so that the Python services of the tutorial read our messages and
//! we read theirs:
//!
//! - the **payload** is the record `{"data": <payload>}` — exactly what the Python
//!   `pulsar.schema.Record` classes put on the wire (their envelope fields are inherited, and the
//!   Python client only serialises the fields a class declares itself). On an Avro topic it is
//!   a plain Avro datum under the topic's schema; on a JSON topic it is that record as JSON;
//! - the **envelope** (`id`, `time`, `ingestion`, `specversion`, `type`, `datacontenttype`,
//!   `service_name`) travels in message properties of the same names, beside the message's own
//!   properties (the correlation id…), so it never disturbs the schema;
//! - the **key** is the Pulsar partition key.
//!
//! Decoding follows the wire, not a guess: a message carrying a schema version is read with the
//! schema the broker registered for that version (Avro or JSON), resolved into the topic's
//! declared schema when there is one. A message without envelope properties (a Python
//! producer's) gets its envelope from the topic's declaration and the broker's metadata.

mod avro;
mod properties;
mod record;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use seedwork::messaging::schema::{
    AvroSchema as DerivedSchema, Field, MessageSchema, Record as DerivedRecord, Schema as Derived,
};
use seedwork::messaging::{IntegrationMessage, Message};
use serde_json::Value;

pub(crate) use avro::AvroSchema;
pub use record::{AvroType, Record};

use crate::error::{CodecError, PulsarError};

/// Why a [`TopicSchema`] could not be declared.
#[derive(Debug, thiserror::Error)]
#[error("schema of topic `{topic}`: {source}")]
pub struct SchemaError {
    topic: String,
    #[source]
    source: CodecError,
}

/// The wire format of a topic's payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// A plain Avro datum (no container header), schema registered as `AVRO`.
    Avro,
    /// UTF-8 JSON; schema registered as `JSON` when the topic declares a record.
    Json,
}

/// What one topic carries: codec, the Avro definition of its wire record, and the envelope to
/// assume for messages that arrive without one.
#[derive(Debug, Clone)]
pub struct TopicSchema {
    topic: String,
    codec: Codec,
    schema: Option<Arc<AvroSchema>>,
    default_type: Option<String>,
    default_version: String,
    /// On a topic carrying several message types, the type and version of each non-null
    /// branch of the `data` union, in order; empty otherwise.
    branches: Vec<(String, String)>,
}

impl SchemaError {
    /// The topic whose schema it is.
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

impl TopicSchema {
    /// The topic of message type `M`, Avro under the schema derived from `M`'s payload type
    /// (`#[derive(IntegrationEvent)]` and `#[derive(IntegrationCommand)]` derive it): what
    /// [`PulsarBuilder`](crate::PulsarBuilder) declares by itself for every registered type.
    pub fn message<M: IntegrationMessage + DerivedSchema>() -> Result<Self, SchemaError> {
        Self::derived(M::TOPIC, &[MessageSchema::of::<M>()])
    }

    /// An Avro topic carrying `messages` (their payload schemas, derived from the types).
    ///
    /// - One message type: the wire record is named after the type and holds the payload in
    ///   its `data` field, `["null", payload]` — what a Python `pulsar.schema.Record` subclass
    ///   with a `data` field registers, so the two sides read each other when the payload
    ///   record matches the Python one (`#[avro(name = "...", nullable)]`).
    /// - Several types: the wire record is named after the topic (`eventos-estado-reserva`
    ///   becomes `EventosEstadoReserva`) and `data` is the union `["null", payload₁,
    ///   payload₂, …]`, one branch per type in the order given. A message is written as the
    ///   branch of its type, and a message without an envelope (another client's) is read as
    ///   the type of the branch it was written as.
    ///
    /// Several versions of one type: the last one given is the topic's (newer versions must be
    /// readable by older consumers, see the `compatibility` module). A payload record named like
    /// the wire record is renamed `<name>Payload`, since Avro names must be unique.
    pub fn derived(
        topic: impl Into<String>,
        messages: &[MessageSchema],
    ) -> Result<Self, SchemaError> {
        let topic = topic.into();
        let mut latest: Vec<&MessageSchema> = Vec::new();
        for message in messages {
            match latest
                .iter_mut()
                .find(|known| known.message_type == message.message_type)
            {
                Some(known) => *known = message,
                None => latest.push(message),
            }
        }
        let wire_name = match latest.as_slice() {
            [] => {
                return Err(SchemaError {
                    topic,
                    source: CodecError::NoMessageTypes,
                })
            }
            [only] => only.message_type.to_string(),
            _ => avro_name(&topic),
        };
        let payloads = latest.iter().map(|message| {
            let mut payload = message.payload();
            if let Derived::Record(record) = &mut payload {
                if record.name == wire_name && record.namespace.is_none() {
                    record.name = format!("{wire_name}Payload");
                }
            }
            payload
        });
        let data = Derived::Union(std::iter::once(Derived::Null).chain(payloads).collect());
        let wire: Derived = DerivedRecord::new(wire_name)
            .field(Field::new("data", data))
            .into();
        let mut schema = Self::avro(topic, &wire.to_json().to_string())?;
        if let [only] = latest.as_slice() {
            schema.default_type = Some(only.message_type.to_string());
            schema.default_version = only.version.to_string();
        } else {
            schema.default_type = None;
            schema.branches = latest
                .iter()
                .map(|m| (m.message_type.to_string(), m.version.to_string()))
                .collect();
        }
        Ok(schema)
    }

    /// An Avro topic whose wire record is `schema` (JSON text): a record with a `data` field,
    /// as the Python classes define it. Messages arriving without an envelope (from a Python
    /// producer) are taken to be of the record's name, version `v1`.
    pub fn avro(topic: impl Into<String>, schema: &str) -> Result<Self, SchemaError> {
        Self::with_record(topic.into(), Codec::Avro, schema)
    }

    /// An Avro topic from a [`Record`] (usually built to mirror the Python classes).
    pub fn avro_record(topic: impl Into<String>, record: &Record) -> Result<Self, SchemaError> {
        Self::avro(topic, &record.to_json().to_string())
    }

    /// A JSON topic that registers `schema` (a record with a `data` field) as its `JSON`
    /// schema, as the Python `JsonSchema` does.
    pub fn json_with_schema(topic: impl Into<String>, schema: &str) -> Result<Self, SchemaError> {
        Self::with_record(topic.into(), Codec::Json, schema)
    }

    /// A JSON topic without a registered schema.
    pub fn json(topic: impl Into<String>) -> Self {
        TopicSchema {
            topic: topic.into(),
            codec: Codec::Json,
            schema: None,
            default_type: None,
            default_version: "v1".into(),
            branches: Vec::new(),
        }
    }

    fn with_record(topic: String, codec: Codec, text: &str) -> Result<Self, SchemaError> {
        let fail = |source: CodecError| SchemaError {
            topic: topic.clone(),
            source,
        };
        let schema = AvroSchema::parse(text).map_err(fail)?;
        let apache_avro::Schema::Record(record) = schema.schema() else {
            return Err(fail(CodecError::NotARecordSchema));
        };
        if !record.lookup.contains_key("data") {
            return Err(fail(CodecError::NoDataField {
                record: record.name.to_string(),
            }));
        }
        let default_type = Some(record.name.name.clone());
        Ok(TopicSchema {
            topic,
            codec,
            schema: Some(Arc::new(schema)),
            default_type,
            default_version: "v1".into(),
            branches: Vec::new(),
        })
    }

    /// The message type assumed for messages without an envelope (default: the record name).
    pub fn default_type(mut self, message_type: impl Into<String>) -> Self {
        self.default_type = Some(message_type.into());
        self
    }

    /// The version assumed for messages without an envelope (default `v1`).
    pub fn default_version(mut self, version: impl Into<String>) -> Self {
        self.default_version = version.into();
        self
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The registered schema's definition (JSON text), if any.
    pub fn definition(&self) -> Option<&str> {
        self.schema.as_deref().map(AvroSchema::text)
    }

    /// This topic's declaration, moved to another topic (dead-letter topics keep the schema).
    pub(crate) fn for_topic(&self, topic: &str) -> TopicSchema {
        TopicSchema {
            topic: topic.to_string(),
            ..self.clone()
        }
    }

    /// The schema a producer or consumer announces to the broker.
    pub(crate) fn wire(&self) -> Option<WireSchema> {
        self.schema.as_ref().map(|schema| WireSchema {
            codec: self.codec,
            avro: Some(schema.clone()),
        })
    }

    /// `message` as the Pulsar message this adapter sends for it on this topic: payload,
    /// envelope and properties, partition key, event time. For tools and benchmarks that
    /// drive a `pulsar` producer themselves.
    pub fn to_pulsar(
        &self,
        message: &Message,
    ) -> Result<pulsar::producer::Message, seedwork::Error> {
        let payload = self
            .encode_payload(message)
            .map_err(|source| PulsarError::Encode {
                type_name: message.envelope.message_type.clone(),
                topic: message.topic.clone(),
                source,
            })?;
        Ok(pulsar::producer::Message {
            payload,
            properties: wire_properties(message),
            partition_key: message.key.clone(),
            event_time: u64::try_from(message.envelope.time).ok(),
            ..Default::default()
        })
    }

    /// The schema a producer of this topic announces (`None` for schemaless JSON).
    pub fn pulsar_schema(&self) -> Option<pulsar::proto::Schema> {
        self.wire().and_then(|w| w.to_proto())
    }

    /// The payload bytes of `message` on this topic.
    pub(crate) fn encode_payload(&self, message: &Message) -> Result<Vec<u8>, CodecError> {
        if let (false, Some(schema)) = (self.branches.is_empty(), &self.schema) {
            let message_type = &message.envelope.message_type;
            let branch = self
                .branches
                .iter()
                .position(|(known, _)| known == message_type)
                .ok_or_else(|| CodecError::NotInUnion(message_type.clone()))?;
            let avro = schema.encode_branch(&message.envelope.data, branch + 1)?;
            return match self.codec {
                Codec::Avro => Ok(avro),
                Codec::Json => json_record(&message.envelope.data),
            };
        }
        let data = &message.envelope.data;
        match (self.codec, &self.schema) {
            (Codec::Avro, Some(schema)) => schema.encode_data(data),
            (Codec::Avro, None) => Err(CodecError::AvroWithoutSchema),
            (Codec::Json, Some(schema)) => {
                // Validate against the declared record so JSON topics catch the same mistakes.
                schema.encode_data(data)?;
                json_record(data)
            }
            (Codec::Json, None) => json_record(data),
        }
    }
}

/// The wire record `{"data": data}` as JSON text, written around `data` without copying it
/// into a record first.
fn json_record(data: &Value) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(br#"{"data":"#);
    serde_json::to_writer(&mut out, data).map_err(CodecError::Json)?;
    out.push(b'}');
    Ok(out)
}

/// The schema of one received message, as registered on the broker for its version.
#[derive(Debug, Clone)]
pub(crate) struct WireSchema {
    pub(crate) codec: Codec,
    /// The record definition (absent for a schemaless JSON topic).
    pub(crate) avro: Option<Arc<AvroSchema>>,
}

impl WireSchema {
    /// Reads the broker's schema info: `AVRO` and `JSON` are understood, `NONE`/`BYTES` mean
    /// schemaless JSON.
    pub(crate) fn from_info(schema_type: i32, data: &[u8]) -> Result<WireSchema, CodecError> {
        use pulsar::proto::schema::Type;
        let text = || std::str::from_utf8(data).map_err(CodecError::SchemaText);
        match Type::try_from(schema_type) {
            Ok(Type::Avro) => Ok(WireSchema {
                codec: Codec::Avro,
                avro: Some(Arc::new(AvroSchema::parse(text()?)?)),
            }),
            Ok(Type::Json) => Ok(WireSchema {
                codec: Codec::Json,
                avro: AvroSchema::parse(text()?).ok().map(Arc::new),
            }),
            Ok(Type::None) => Ok(WireSchema {
                codec: Codec::Json,
                avro: None,
            }),
            Ok(other) => Err(CodecError::UnsupportedSchemaType(other)),
            Err(_) => Err(CodecError::UnknownSchemaType(schema_type)),
        }
    }

    /// The `pulsar` schema to announce.
    pub(crate) fn to_proto(&self) -> Option<pulsar::proto::Schema> {
        use pulsar::proto::schema::Type;
        let avro = self.avro.as_ref()?;
        Some(pulsar::proto::Schema {
            name: String::new(),
            schema_data: avro.text().as_bytes().to_vec(),
            r#type: match self.codec {
                Codec::Avro => Type::Avro as i32,
                Codec::Json => Type::Json as i32,
            },
            properties: Vec::new(),
        })
    }

    /// A cheap key for caching producers by schema.
    pub(crate) fn cache_key(&self) -> (Codec, Option<u64>) {
        (
            self.codec,
            self.avro.as_deref().map(AvroSchema::fingerprint),
        )
    }
}

/// What the consumer knows of a received message before decoding it.
pub(crate) struct Received<'a> {
    pub(crate) topic: &'a str,
    pub(crate) payload: &'a [u8],
    pub(crate) properties: BTreeMap<String, String>,
    pub(crate) key: Option<String>,
    pub(crate) producer_name: &'a str,
    pub(crate) publish_time: u64,
    pub(crate) event_time: Option<u64>,
    pub(crate) pulsar_id: String,
}

/// Decodes a received message: `writer` is the schema its version was registered with (`None`
/// when it carries no version), `declared` the topic's declaration.
pub(crate) fn decode(
    received: Received<'_>,
    writer: Option<&WireSchema>,
    declared: &TopicSchema,
) -> Result<Message, CodecError> {
    let reader = declared.schema.as_deref();
    let codec = writer.map(|w| w.codec).unwrap_or(declared.codec);
    // The type and version of the union branch the payload was written as, on a union topic.
    let mut branch = None;
    let record = match codec {
        Codec::Avro => {
            let writer_schema = writer
                .and_then(|w| w.avro.as_deref())
                .or(reader)
                .ok_or(CodecError::UnknownWriterSchema)?;
            let reader_schema = reader.filter(|r| r.fingerprint() != writer_schema.fingerprint());
            let (record, index) =
                writer_schema.decode_with_branch(received.payload, reader_schema)?;
            // The index is in the reader's schema (the declaration) whenever there is one.
            if reader.is_some() {
                branch = index
                    .and_then(|i| i.checked_sub(1))
                    .and_then(|i| declared.branches.get(i));
            }
            record
        }
        Codec::Json => {
            serde_json::from_slice::<Value>(received.payload).map_err(CodecError::Json)?
        }
    };
    let Value::Object(mut record) = record else {
        return Err(CodecError::PayloadNotARecord);
    };
    let data = record
        .remove("data")
        .ok_or(CodecError::PayloadWithoutData)?;
    let (envelope, properties) = properties::split(
        received.properties,
        data,
        properties::Defaults {
            message_type: branch
                .map(|(message_type, _)| message_type.as_str())
                .or(declared.default_type.as_deref()),
            version: branch
                .map(|(_, version)| version.as_str())
                .unwrap_or(&declared.default_version),
            codec,
            producer_name: received.producer_name,
            publish_time: received.publish_time,
            event_time: received.event_time,
            pulsar_id: &received.pulsar_id,
            topic: received.topic,
        },
    )?;
    Ok(Message {
        topic: declared.topic.clone(),
        key: received.key,
        envelope,
        properties,
    })
}

/// An Avro name for a topic: `eventos-estado-reserva` becomes `EventosEstadoReserva`.
fn avro_name(topic: &str) -> String {
    let topic = topic.rsplit('/').next().unwrap_or(topic);
    let mut name: String = topic
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.insert(0, '_');
    }
    name
}

/// The properties a message travels with: its own, then the envelope's (which win).
pub(crate) fn wire_properties(message: &Message) -> HashMap<String, String> {
    properties::join(&message.envelope, &message.properties)
}

/// The topics' declarations, and what to use for the others.
#[derive(Debug, Clone)]
pub struct Schemas {
    topics: HashMap<String, TopicSchema>,
    fallback: Option<TopicSchema>,
    /// What an undeclared topic uses without a fallback.
    schemaless: TopicSchema,
}

impl Default for Schemas {
    fn default() -> Self {
        Schemas {
            topics: HashMap::new(),
            fallback: None,
            schemaless: TopicSchema::json(""),
        }
    }
}

impl Schemas {
    /// No declarations: every topic is schemaless JSON.
    pub fn new() -> Self {
        Self::default()
    }

    /// The codec and schema for publishing to `topic`, without copying them (the returned
    /// declaration may be the fallback's, named after another topic).
    pub(crate) fn encoding_for(&self, topic: &str) -> &TopicSchema {
        self.topics
            .get(topic)
            .or(self.fallback.as_ref())
            .unwrap_or(&self.schemaless)
    }

    /// Declares, for every topic that integration message types are registered for
    /// ([`seedwork::messaging::schema::registered`]) and that has no declaration yet, the
    /// schema derived from those types ([`TopicSchema::derived`]).
    pub fn declare_registered(&mut self) -> Result<(), SchemaError> {
        let mut by_topic: std::collections::BTreeMap<&str, Vec<MessageSchema>> = Default::default();
        for message in seedwork::messaging::schema::registered() {
            by_topic.entry(message.topic).or_default().push(message);
        }
        for (topic, messages) in by_topic {
            if !self.topics.contains_key(topic) {
                self.declare(TopicSchema::derived(topic, &messages)?);
            }
        }
        Ok(())
    }

    /// Declares a topic's schema.
    pub fn declare(&mut self, schema: TopicSchema) {
        self.topics.insert(schema.topic.clone(), schema);
    }

    /// Uses `schema`'s codec and record for every undeclared topic.
    pub fn set_fallback(&mut self, schema: TopicSchema) {
        self.fallback = Some(schema);
    }

    /// The declaration in effect for `topic`.
    pub fn for_topic(&self, topic: &str) -> TopicSchema {
        if let Some(schema) = self.topics.get(topic) {
            return schema.clone();
        }
        match &self.fallback {
            Some(fallback) => fallback.for_topic(topic),
            None => TopicSchema::json(topic),
        }
    }
}

#[cfg(test)]
mod derived_tests;
