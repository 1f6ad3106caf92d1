//! What the adapter spends per message turning a seedwork [`Message`] into a Pulsar message:
//! [`TopicSchema::to_pulsar`] (payload encoding, envelope properties, key) on the topic kinds a
//! publish can meet. No broker is needed.
//!
//! - **avro**: a topic of one message type, `{"data": payload}` as an Avro datum (what the
//!   relay benchmark and the reference system's event topics send);
//! - **avro union**: a topic carrying two message types, `data` a union of both;
//! - **json**: a schemaless JSON topic.
//!
//! Run: `cargo bench -p seedwork-pulsar --bench codec`.

// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use seedwork::messaging::schema::MessageSchema;
use seedwork::messaging::{IntegrationEvent, Message};
use seedwork_pulsar::{AvroType, Record, TopicSchema};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, seedwork::IntegrationEvent)]
#[integration(topic = "bench-codec", name = "EventoReservaCreada", key = id_reserva)]
struct ReservaCreada {
    id_reserva: String,
    id_cliente: String,
    estado: String,
    fecha_creacion: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, seedwork::IntegrationEvent)]
#[integration(topic = "bench-codec", name = "EventoReservaCancelada", key = id_reserva)]
struct ReservaCancelada {
    id_reserva: String,
    motivo: String,
}

fn creada() -> ReservaCreada {
    ReservaCreada {
        id_reserva: "00000001-0000-4000-8000-000000000001".into(),
        id_cliente: "anonimo".into(),
        estado: "Pendiente".into(),
        fecha_creacion: 1_756_900_800_000,
    }
}

fn message<M: IntegrationEvent>(event: &M, topic: &str) -> Message {
    let mut message = Message::encode(event, "bench").expect("encodes");
    message.topic = topic.to_string();
    message
}

fn encode(c: &mut Criterion) {
    let payload = Record::new("ReservaCreadaPayload")
        .field("id_reserva", AvroType::String)
        .field("id_cliente", AvroType::String)
        .field("estado", AvroType::String)
        .field("fecha_creacion", AvroType::Long);
    let wire = Record::new("EventoReservaCreada").field("data", AvroType::Record(payload));
    let avro = TopicSchema::avro_record("bench-avro", &wire).expect("schema");
    let union = TopicSchema::derived(
        "bench-codec",
        &[
            MessageSchema::of::<ReservaCreada>(),
            MessageSchema::of::<ReservaCancelada>(),
        ],
    )
    .expect("schema");
    let json = TopicSchema::json("bench-json");

    let mut group = c.benchmark_group("to_pulsar");
    group.throughput(Throughput::Elements(1));
    for (name, schema) in [("avro", &avro), ("avro union", &union), ("json", &json)] {
        let message = message(&creada(), schema.topic());
        schema.to_pulsar(&message).expect("encodes");
        group.bench_function(name, |b| {
            b.iter(|| schema.to_pulsar(std::hint::black_box(&message)))
        });
    }
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
