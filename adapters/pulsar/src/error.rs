//! The adapter's own errors: what failed, with the `pulsar` or `apache_avro` error beneath.
//!
//! They are private to the crate. At the boundary a [`PulsarError`] becomes a
//! [`seedwork::Error`] (see its `From` impl) and travels as that error's boxed `source`, so a
//! caller who needs the detail can still reach it through [`std::error::Error::source`] or
//! `downcast_ref`, while the types themselves stay free to change.
//!
//! Each message names the failing step and then, after a colon, what the layer beneath
//! reported, in the same style as [`seedwork::Error`]'s own messages.

use std::time::Duration;

/// A failure to talk to the broker, or a codec failure on the way to it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PulsarError {
    /// The client could not connect to the cluster.
    #[error("connecting to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: pulsar::Error,
    },
    /// No producer could be created for a topic.
    #[error("creating a producer for `{topic}`: {source}")]
    CreateProducer {
        topic: String,
        #[source]
        source: pulsar::Error,
    },
    /// The producer refused to enqueue a message.
    #[error("sending to `{topic}`: {source}")]
    Send {
        topic: String,
        #[source]
        source: pulsar::Error,
    },
    /// The broker did not confirm a sent message.
    #[error("broker receipt for a message sent to `{topic}`: {source}")]
    Receipt {
        topic: String,
        #[source]
        source: pulsar::Error,
    },
    /// A publish took longer than the send timeout.
    #[error("publishing to `{topic}`: no receipt within {timeout:?}")]
    SendTimeout { topic: String, timeout: Duration },
    /// A message could not be encoded for a topic.
    #[error("encoding for `{topic}`: {source}")]
    Encode {
        type_name: String,
        topic: String,
        #[source]
        source: CodecError,
    },
    /// No consumer could be created for a subscription.
    #[error("subscribing to `{topic}` as `{subscription}`: {source}")]
    Subscribe {
        topic: String,
        subscription: String,
        #[source]
        source: pulsar::Error,
    },
    /// The broker refused to delete a subscription (one with consumers attached, for one).
    #[error("deleting the subscription `{subscription}` of `{topic}`: {source}")]
    Unsubscribe {
        topic: String,
        subscription: String,
        #[source]
        source: pulsar::Error,
    },
    /// The broker could not tell the schema of a received message's version.
    #[error("fetching the schema of a message's version on `{topic}`: {source}")]
    FetchSchema {
        topic: String,
        #[source]
        source: pulsar::Error,
    },
    /// The broker served a schema this adapter cannot read.
    #[error("the schema of a message's version on `{topic}`: {source}")]
    WriterSchema {
        topic: String,
        #[source]
        source: CodecError,
    },
    /// The broker refused an acknowledgement.
    #[error("acknowledging message {message_id}: {source}")]
    Ack {
        message_id: String,
        #[source]
        source: pulsar::error::ConsumerError,
    },
    /// A message was re-published to the dead-letter topic but could not be acknowledged on
    /// its own topic.
    #[error("acknowledging a dead-lettered message on `{topic}`: {source}")]
    AckDeadLetter {
        topic: String,
        #[source]
        source: pulsar::error::ConsumerError,
    },
    /// A delivery was settled twice, or was never handed out by this consumer.
    #[error("delivery {token} of message {message_id} is unknown or already settled")]
    UnknownDelivery { token: u64, message_id: String },
    /// A delivery from before a reconnection was settled: the broker redelivers it instead.
    #[error(
        "message {message_id} was received before the consumer reconnected; the broker \
         redelivers it"
    )]
    StaleDelivery { message_id: String },
    /// The consumer lost its stream and has not rebuilt it yet.
    #[error("the consumer of `{topic}` is reconnecting to the broker")]
    Reconnecting { topic: String },
    /// A health check's lookup failed.
    #[error("checking the broker: {source}")]
    Check {
        #[source]
        source: pulsar::Error,
    },
    /// A health check's lookup got no answer in time.
    #[error("checking the broker: no answer within {timeout:?}")]
    CheckTimeout { timeout: Duration },
}

impl PulsarError {
    /// Whether the broker cannot do it *now* (unreachable, disconnected, busy, not ready,
    /// restarting, too slow to answer) rather than refusing it for good.
    fn is_transient(&self) -> bool {
        match self {
            PulsarError::Connect { source, .. }
            | PulsarError::CreateProducer { source, .. }
            | PulsarError::Send { source, .. }
            | PulsarError::Receipt { source, .. }
            | PulsarError::Subscribe { source, .. }
            | PulsarError::Unsubscribe { source, .. }
            | PulsarError::FetchSchema { source, .. }
            | PulsarError::Check { source } => is_transient(source),
            PulsarError::Ack { source, .. } | PulsarError::AckDeadLetter { source, .. } => {
                is_transient_consumer(source)
            }
            PulsarError::SendTimeout { .. }
            | PulsarError::Reconnecting { .. }
            | PulsarError::CheckTimeout { .. } => true,
            PulsarError::Encode { .. }
            | PulsarError::WriterSchema { .. }
            | PulsarError::UnknownDelivery { .. }
            | PulsarError::StaleDelivery { .. } => false,
        }
    }
}

/// Whether a client error means the broker is out of reach or busy for now. The refusals that
/// no retry changes — an incompatible schema, a bad topic name, authentication and
/// authorization, a terminated topic, an operation the broker does not allow, a frame the
/// client cannot encode or decode, an exclusive subscription another consumer holds — are not
/// transient; every connection-level failure is.
pub(crate) fn is_transient(error: &pulsar::Error) -> bool {
    match error {
        pulsar::Error::Connection(connection) => is_transient_connection(connection),
        pulsar::Error::Consumer(consumer) => is_transient_consumer(consumer),
        pulsar::Error::Producer(producer) => match producer {
            pulsar::error::ProducerError::Connection(connection) => {
                is_transient_connection(connection)
            }
            pulsar::error::ProducerError::Io(_) | pulsar::error::ProducerError::Closed => true,
            pulsar::error::ProducerError::Batch(inner) => is_transient(inner),
            pulsar::error::ProducerError::PartialSend(results) => results
                .iter()
                .filter_map(|result| result.as_ref().err())
                .all(is_transient),
            _ => false,
        },
        pulsar::Error::ServiceDiscovery(discovery) => match discovery {
            pulsar::error::ServiceDiscoveryError::Connection(connection) => {
                is_transient_connection(connection)
            }
            pulsar::error::ServiceDiscoveryError::Query(server, _) => {
                server.is_none_or(is_transient_server_error)
            }
            pulsar::error::ServiceDiscoveryError::NotFound
            | pulsar::error::ServiceDiscoveryError::Dummy => false,
            _ => true,
        },
        pulsar::Error::Authentication(pulsar::error::AuthenticationError::Retriable(_)) => true,
        _ => false,
    }
}

fn is_transient_consumer(error: &pulsar::error::ConsumerError) -> bool {
    match error {
        pulsar::error::ConsumerError::Connection(connection) => is_transient_connection(connection),
        pulsar::error::ConsumerError::Io(_)
        | pulsar::error::ConsumerError::ChannelFull
        | pulsar::error::ConsumerError::Closed => true,
        _ => false,
    }
}

fn is_transient_connection(error: &pulsar::error::ConnectionError) -> bool {
    use pulsar::error::ConnectionError;
    match error {
        ConnectionError::PulsarError(server, _) => server.is_none_or(is_transient_server_error),
        ConnectionError::Io(_)
        | ConnectionError::SlowDown
        | ConnectionError::Disconnected
        | ConnectionError::NotFound
        | ConnectionError::Canceled
        | ConnectionError::Shutdown => true,
        _ => false,
    }
}

fn is_transient_server_error(error: pulsar::message::proto::ServerError) -> bool {
    use pulsar::message::proto::ServerError;
    !matches!(
        error,
        ServerError::AuthenticationError
            | ServerError::AuthorizationError
            | ServerError::ConsumerBusy
            | ServerError::ChecksumError
            | ServerError::UnsupportedVersionError
            | ServerError::TopicTerminatedError
            | ServerError::InvalidTopicName
            | ServerError::IncompatibleSchema
            | ServerError::NotAllowedError
    )
}

impl From<PulsarError> for seedwork::Error {
    /// Encoding failures become [`seedwork::Error::Codec`] (named after the message type); a
    /// broker that is unreachable, busy or restarting [`seedwork::Error::Unavailable`];
    /// everything else (a refusal no retry changes) [`seedwork::Error::Broker`]. The typed
    /// error is the boxed source.
    fn from(error: PulsarError) -> Self {
        if error.is_transient() {
            return seedwork::Error::unavailable(error);
        }
        match error {
            PulsarError::Encode { ref type_name, .. } => {
                seedwork::Error::codec(type_name.clone(), error)
            }
            other => seedwork::Error::broker(other),
        }
    }
}

/// Why a schema could not be read, or a payload encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    /// The text is not an Avro schema.
    #[error("not an Avro schema: {0}")]
    SchemaParse(#[source] apache_avro::Error),
    /// The schema refers to names it does not define.
    #[error("unresolvable Avro schema: {0}")]
    SchemaResolve(#[source] apache_avro::Error),
    /// The broker's schema data is not UTF-8 text.
    #[error("the schema is not UTF-8 text: {0}")]
    SchemaText(#[source] std::str::Utf8Error),
    /// A topic's wire schema is not a record.
    #[error("the wire schema must be a record")]
    NotARecordSchema,
    /// A topic's wire record has no field for the payload.
    #[error("record `{record}` has no `data` field to carry the payload")]
    NoDataField { record: String },
    /// The broker registered a schema type this adapter does not read.
    #[error("schema type {0:?} is not supported")]
    UnsupportedSchemaType(pulsar::proto::schema::Type),
    /// The broker sent a schema type number this adapter does not know.
    #[error("unknown schema type {0}")]
    UnknownSchemaType(i32),
    /// An Avro topic without a record schema.
    #[error("an Avro topic needs a schema")]
    AvroWithoutSchema,
    /// A JSON value does not fit the Avro type at `path` (`.` is the root).
    #[error("`{path}`: expected {expected}, found {found}")]
    Mismatch {
        path: String,
        expected: String,
        found: &'static str,
    },
    /// An object has a field its record does not declare.
    #[error("`{path}`: record `{record}` has no such field")]
    UnknownField { path: String, record: String },
    /// A union has no branch besides `null`.
    #[error("`{path}`: no union branch fits")]
    NoUnionBranch { path: String },
    /// A named type the schema refers to is not defined.
    #[error("unknown Avro type `{0}`")]
    UnknownName(String),
    /// An Avro type without a JSON counterpart in this adapter.
    #[error("`{path}`: the Avro type {kind} has no JSON mapping here")]
    UnsupportedType { path: String, kind: String },
    /// An empty payload (apache-avro would read it as a null union; no writer produces it).
    #[error("the payload is empty")]
    EmptyPayload,
    /// apache-avro could not read the datum.
    #[error("reading the Avro datum: {0}")]
    AvroRead(#[source] apache_avro::Error),
    /// The datum ended before the payload did.
    #[error("{0} bytes left over after the datum: the data was not written with this schema")]
    TrailingBytes(usize),
    /// A decoded Avro value without a JSON counterpart.
    #[error("the Avro value {0} has no JSON mapping here")]
    UnsupportedValue(String),
    /// A float that JSON cannot represent (NaN, infinity).
    #[error("{0} is not a JSON number")]
    NotANumber(f64),
    /// A payload is not valid JSON, or a record could not be written as JSON.
    #[error("JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// An Avro payload arrived on a topic without a declared schema, with no schema version.
    #[error("an Avro payload without a known schema")]
    UnknownWriterSchema,
    /// The payload is not a record.
    #[error("the payload is not a record")]
    PayloadNotARecord,
    /// The payload record has no `data` field.
    #[error("the payload record has no `data` field")]
    PayloadWithoutData,
    /// An envelope time property is not epoch milliseconds.
    #[error("property `{property}` is not epoch milliseconds: {value:?}")]
    Timestamp {
        property: &'static str,
        value: String,
        #[source]
        source: std::num::ParseIntError,
    },
    /// No `type` property, and the topic declares no default type.
    #[error("the message has no `type` property and its topic declares no default type")]
    MissingType,
    /// A message of a type the topic's union does not carry.
    #[error("type `{0}` is not one of the types this topic's schema carries")]
    NotInUnion(String),
    /// No message type is registered for a topic whose schema is to be derived.
    #[error("no message type is registered for this topic")]
    NoMessageTypes,
    /// A timestamp the schema declares is neither epoch milliseconds nor RFC 3339 text.
    #[error("`{path}`: {value:?} is not a timestamp (RFC 3339 or epoch milliseconds)")]
    NotATimestamp { path: String, value: String },
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn an_unanswered_publish_is_unavailable_with_the_typed_source() {
        let error = seedwork::Error::from(PulsarError::SendTimeout {
            topic: "t".into(),
            timeout: Duration::from_secs(1),
        });
        assert!(
            matches!(error, seedwork::Error::Unavailable(_)),
            "{error:?}"
        );
        assert!(error.is_transient());
        let source = error.source().expect("a source");
        assert!(matches!(
            source.downcast_ref::<PulsarError>(),
            Some(PulsarError::SendTimeout { topic, .. }) if topic == "t"
        ));
        assert_eq!(
            error.to_string(),
            "unavailable: publishing to `t`: no receipt within 1s"
        );
    }

    fn server_error(error: pulsar::message::proto::ServerError) -> pulsar::Error {
        pulsar::Error::Connection(pulsar::error::ConnectionError::PulsarError(
            Some(error),
            Some("refused".into()),
        ))
    }

    #[test]
    fn a_lost_connection_is_transient_and_a_refused_schema_is_not() {
        use pulsar::message::proto::ServerError;
        let disconnected = seedwork::Error::from(PulsarError::CreateProducer {
            topic: "t".into(),
            source: pulsar::Error::Connection(pulsar::error::ConnectionError::Disconnected),
        });
        assert!(disconnected.is_transient(), "{disconnected:?}");
        let not_ready = seedwork::Error::from(PulsarError::Send {
            topic: "t".into(),
            source: server_error(ServerError::ServiceNotReady),
        });
        assert!(not_ready.is_transient(), "{not_ready:?}");
        let incompatible = seedwork::Error::from(PulsarError::CreateProducer {
            topic: "t".into(),
            source: server_error(ServerError::IncompatibleSchema),
        });
        assert!(
            matches!(incompatible, seedwork::Error::Broker(_)),
            "{incompatible:?}"
        );
        assert!(!incompatible.is_transient());
        let stale = seedwork::Error::from(PulsarError::StaleDelivery {
            message_id: "1:2".into(),
        });
        assert!(matches!(stale, seedwork::Error::Broker(_)), "{stale:?}");
    }

    #[test]
    fn encoding_failures_become_codec_errors_named_after_the_message_type() {
        let error = seedwork::Error::from(PulsarError::Encode {
            type_name: "ReservaCreada".into(),
            topic: "eventos-reserva".into(),
            source: CodecError::UnknownField {
                path: ".data.surprise".into(),
                record: "Payload".into(),
            },
        });
        let seedwork::Error::Codec { type_name, source } = &error else {
            panic!("expected a codec error, got {error:?}");
        };
        assert_eq!(type_name, "ReservaCreada");
        let typed = source
            .downcast_ref::<PulsarError>()
            .and_then(|e| e.source())
            .and_then(|e| e.downcast_ref::<CodecError>());
        assert!(
            matches!(typed, Some(CodecError::UnknownField { path, .. }) if path == ".data.surprise"),
            "{error:?}"
        );
    }
}
