//! Topics whose schema is derived from their message types: the wire record, the branch a
//! union topic writes, and the type a message without an envelope is read as.

use std::collections::BTreeMap;

use seedwork::messaging::schema::{Field, MessageSchema, Record, Schema};
use seedwork::messaging::{Envelope, Message, MessageKind};
use serde_json::{json, Value};

use super::{decode, Received, TopicSchema};
use crate::error::CodecError;

/// Two payloads of the same shape: only the message type tells them apart.
fn aprobada() -> Schema {
    Record::new("ReservaAprobadaPayload")
        .field(Field::new("id_reserva", Schema::String))
        .field(Field::new("fecha", Schema::TimestampMillis))
        .into()
}

fn cancelada() -> Schema {
    Record::new("ReservaCanceladaPayload")
        .field(Field::new("id_reserva", Schema::String))
        .field(Field::new("fecha", Schema::TimestampMillis))
        .into()
}

/// A payload record named like its message type.
fn creada() -> Schema {
    Record::new("EventoReservaCreada")
        .field(Field::new("id_reserva", Schema::String.nullable()))
        .into()
}

const TOPIC: &str = "eventos-estado-reserva";

fn union_topic() -> TopicSchema {
    TopicSchema::derived(
        TOPIC,
        &[
            MessageSchema::new(
                TOPIC,
                "EventoReservaAprobada",
                "v1",
                MessageKind::Event,
                aprobada,
            ),
            MessageSchema::new(
                TOPIC,
                "EventoReservaCancelada",
                "v1",
                MessageKind::Event,
                cancelada,
            ),
        ],
    )
    .expect("a valid union")
}

fn message(message_type: &str, data: Value) -> Message {
    Message {
        topic: TOPIC.into(),
        key: Some("r-1".into()),
        envelope: Envelope::new(message_type, "v1", "test", data),
        properties: BTreeMap::new(),
    }
}

/// Decodes `payload` as the topic's consumer would, with or without the envelope properties.
fn read(topic: &TopicSchema, payload: &[u8], envelope: Option<&Message>) -> Message {
    let properties = envelope
        .map(|m| super::wire_properties(m).into_iter().collect())
        .unwrap_or_default();
    decode(
        Received {
            topic: TOPIC,
            payload,
            properties,
            key: None,
            producer_name: "python",
            publish_time: 1,
            event_time: None,
            pulsar_id: "1:0:-1:0".into(),
        },
        topic.wire().as_ref(),
        topic,
    )
    .expect("decoded")
}

#[test]
fn one_type_makes_a_record_named_after_it_with_the_payload_as_data() {
    let topic = TopicSchema::derived(
        "eventos-reserva",
        &[
            MessageSchema::new(
                "eventos-reserva",
                "EventoReservaCreada",
                "v1",
                MessageKind::Event,
                creada,
            ),
            MessageSchema::new(
                "eventos-reserva",
                "EventoReservaCreada",
                "v2",
                MessageKind::Event,
                aprobada,
            ),
        ],
    )
    .expect("valid");
    let wire: Value = serde_json::from_str(topic.definition().unwrap()).unwrap();
    assert_eq!(wire["name"], "EventoReservaCreada");
    // The last version given is the topic's.
    assert_eq!(
        wire["fields"][0]["type"][1]["name"],
        "ReservaAprobadaPayload"
    );
    assert_eq!(topic.default_version, "v2");

    let topic = TopicSchema::derived(
        "eventos-reserva",
        &[MessageSchema::new(
            "eventos-reserva",
            "EventoReservaCreada",
            "v1",
            MessageKind::Event,
            creada,
        )],
    )
    .expect("valid");
    let wire: Value = serde_json::from_str(topic.definition().unwrap()).unwrap();
    // Avro names are unique: the payload record named like the message gives way.
    assert_eq!(
        wire["fields"][0]["type"][1]["name"],
        "EventoReservaCreadaPayload"
    );
    assert_eq!(topic.default_type.as_deref(), Some("EventoReservaCreada"));
}

#[test]
fn several_types_make_a_union_named_after_the_topic() {
    let wire: Value = serde_json::from_str(union_topic().definition().unwrap()).unwrap();
    assert_eq!(wire["name"], "EventosEstadoReserva");
    assert_eq!(wire["fields"][0]["name"], "data");
    assert_eq!(wire["fields"][0]["default"], Value::Null);
    let branches: Vec<&Value> = wire["fields"][0]["type"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(branches[0], "null");
    assert_eq!(branches[1]["name"], "ReservaAprobadaPayload");
    assert_eq!(branches[2]["name"], "ReservaCanceladaPayload");
}

#[test]
fn a_union_topic_writes_the_branch_of_the_message_type_not_the_first_that_fits() {
    let topic = union_topic();
    let data = json!({"id_reserva": "r-1", "fecha": "2026-11-30T10:00:00.000Z"});
    for (message_type, branch) in [
        ("EventoReservaAprobada", 1u8),
        ("EventoReservaCancelada", 2),
    ] {
        let sent = message(message_type, data.clone());
        let payload = topic.encode_payload(&sent).expect("encoded");
        // The union index is the datum's first byte (zig-zag: branch n is 2n).
        assert_eq!(payload[0], branch * 2, "{message_type}");
        // With its envelope, and without one (a client that only knows the schema).
        for envelope in [Some(&sent), None] {
            let received = read(&topic, &payload, envelope);
            assert_eq!(received.envelope.message_type, message_type);
            assert_eq!(
                received.envelope.data, data,
                "timestamps come back as RFC 3339 text"
            );
        }
    }
}

#[test]
fn a_type_the_union_does_not_carry_is_refused() {
    let error = union_topic()
        .encode_payload(&message("EventoReservaPagada", json!({"id_reserva": "r"})))
        .unwrap_err();
    assert!(
        matches!(error, CodecError::NotInUnion(ref t) if t == "EventoReservaPagada"),
        "{error}"
    );
}

#[test]
fn a_timestamp_that_is_not_one_is_a_typed_error() {
    let error = union_topic()
        .encode_payload(&message(
            "EventoReservaAprobada",
            json!({"id_reserva": "r", "fecha": "yesterday"}),
        ))
        .unwrap_err();
    assert!(matches!(error, CodecError::NotATimestamp { .. }), "{error}");
}

#[test]
fn no_types_no_schema() {
    assert!(matches!(
        TopicSchema::derived("t", &[]).map_err(|e| e.source),
        Err(CodecError::NoMessageTypes)
    ));
}
