//! Topic schemas derived from the integration message types (`#[derive(IntegrationEvent)]`),
//! with no declaration: what they render to, that a payload written to mirror a Python
//! `Record` class passes the registry's `FULL` check against the Python one both ways, and
//! round trips through real Pulsar — one type per topic, and several types as a union.

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use seedwork::messaging::schema::MessageSchema;
use seedwork::messaging::{Message, Publisher, Subscriber, SubscriptionOptions};
use seedwork::testing::contract::broker::unique_topic;
use seedwork::IntegrationEvent;
use seedwork_pulsar::compatibility::{check, Compatibility};
use seedwork_pulsar::{PulsarBroker, TopicSchema};

/// The tutorial's `ReservaCreadaPayload` as the Python `Record` class registers it: every field
/// `["null", T]`.
const PYTHON_EVENTO: &str = r#"{"type":"record","name":"EventoReservaCreada","fields":[
    {"name":"data","type":["null",{"type":"record","name":"ReservaCreadaPayload","fields":[
        {"name":"id_reserva","type":["null","string"]},
        {"name":"id_cliente","type":["null","string"]},
        {"name":"estado","type":["null","string"]},
        {"name":"fecha_creacion","type":["null","long"]}]}]}]}"#;

/// The same payload in Rust, mirroring the Python class field for field (every field nullable,
/// as the Python client renders them), plus a field the Python class lacks.
#[derive(Debug, PartialEq, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "derived-schema-creada", name = "EventoReservaCreada", key = id_reserva)]
#[avro(name = "ReservaCreadaPayload", nullable)]
struct Creada {
    id_reserva: String,
    id_cliente: String,
    estado: String,
    fecha_creacion: i64,
    fecha_actualizacion: Option<i64>,
}

/// The Python shape without its nullable wrappers.
#[derive(Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "derived-schema-estricta", name = "EventoReservaCreada")]
#[avro(name = "ReservaCreadaPayload")]
struct CreadaEstricta {
    id_reserva: String,
    id_cliente: String,
    estado: String,
    fecha_creacion: i64,
}

/// Three events of one topic, two of the same shape.
#[derive(Debug, PartialEq, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "derived-schema-estado", name = "EventoReservaAprobada", key = id_reserva)]
#[avro(name = "ReservaAprobadaPayload")]
struct Aprobada {
    id_reserva: String,
    fecha: DateTime<Utc>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "derived-schema-estado", name = "EventoReservaCancelada", key = id_reserva)]
#[avro(name = "ReservaCanceladaPayload")]
struct Cancelada {
    id_reserva: String,
    fecha: DateTime<Utc>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "derived-schema-estado", name = "EventoReservaPagada", key = id_reserva)]
#[avro(name = "ReservaPagadaPayload")]
struct Pagada {
    id_reserva: String,
    monto: f64,
    nota: Option<String>,
}

fn definition(schema: &TopicSchema) -> Value {
    serde_json::from_str(schema.definition().expect("an Avro definition")).expect("JSON")
}

fn estado_types() -> [MessageSchema; 3] {
    [
        MessageSchema::of::<Aprobada>(),
        MessageSchema::of::<Cancelada>(),
        MessageSchema::of::<Pagada>(),
    ]
}

#[test]
fn a_payload_mirroring_the_python_class_passes_full_against_it_both_ways() {
    let ours = TopicSchema::message::<Creada>().expect("derived");
    let ours = ours.definition().expect("Avro");
    check(PYTHON_EVENTO, ours, Compatibility::Full).expect("ours may follow Python's");
    check(ours, PYTHON_EVENTO, Compatibility::Full).expect("Python's may follow ours");

    // Without the nullable wrappers a Python writer's null cannot be read: not compatible.
    let strict = TopicSchema::message::<CreadaEstricta>().expect("derived");
    assert!(check(
        PYTHON_EVENTO,
        strict.definition().expect("Avro"),
        Compatibility::Full
    )
    .is_err());
}

#[test]
fn several_types_on_a_topic_derive_one_union() {
    let union = TopicSchema::derived("derived-schema-estado", &estado_types()).expect("derived");
    let wire = definition(&union);
    assert_eq!(wire["name"], "DerivedSchemaEstado");
    let branches: Vec<String> = wire["fields"][0]["type"]
        .as_array()
        .expect("a union")
        .iter()
        .map(|b| {
            b.get("name")
                .and_then(Value::as_str)
                .unwrap_or("null")
                .to_string()
        })
        .collect();
    assert_eq!(
        branches,
        [
            "null",
            "ReservaAprobadaPayload",
            "ReservaCanceladaPayload",
            "ReservaPagadaPayload"
        ]
    );
}

/// A message of `payload`'s type moved to `topic`, so each run has topics of its own.
fn on_topic<M: seedwork::messaging::IntegrationMessage>(payload: &M, topic: &str) -> Message {
    let mut message = Message::encode(payload, "derived-schema").expect("encodes");
    message.topic = topic.to_string();
    message
}

async fn registered_schema(topic: &str) -> Value {
    let url = format!(
        "{}/admin/v2/schemas/public/default/{topic}/schema",
        support::admin_url()
    );
    let info: Value = serde_json::from_str(&support::admin_get(&url).await).expect("JSON");
    assert_eq!(info["type"], "AVRO", "{info}");
    serde_json::from_str(info["data"].as_str().expect("schema text")).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar: scripts/services up pulsar"]
async fn a_registered_type_travels_under_its_derived_schema_without_a_declaration() {
    let broker = PulsarBroker::connect(support::url())
        .await
        .expect("Pulsar is reachable (scripts/services up pulsar)");
    let topic = <Creada as seedwork::messaging::IntegrationMessage>::TOPIC;
    let expected = TopicSchema::message::<Creada>().expect("derived");
    assert_eq!(
        broker.topic_schema(topic).definition(),
        expected.definition(),
        "connect declares the derived schema by itself"
    );
    // A subscription of this run's own starts at the end of the topic: earlier runs' messages
    // are not read.
    let subscription = format!("s-{}", uuid::Uuid::new_v4().simple());
    let mut consumer = broker
        .subscribe(SubscriptionOptions::new(topic, &subscription))
        .await
        .expect("subscribed");
    let sent = Creada {
        id_reserva: uuid::Uuid::new_v4().to_string(),
        id_cliente: "c-1".into(),
        estado: "Pendiente".into(),
        fecha_creacion: 1_764_460_800_000,
        fecha_actualizacion: None,
    };
    broker
        .publish(&Message::encode(&sent, "derived-schema").expect("encodes"))
        .await
        .expect("published");
    let delivery = tokio::time::timeout(Duration::from_secs(15), consumer.receive())
        .await
        .expect("a delivery in time")
        .expect("received");
    assert_eq!(
        delivery.message.decode::<Creada>().expect("a Creada").data,
        sent
    );
    consumer.ack(&delivery).await.expect("acked");
    assert_eq!(registered_schema(topic).await, definition(&expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar: scripts/services up pulsar"]
async fn a_union_topic_delivers_each_type_as_itself() {
    let topic = unique_topic("derived-union");
    let union = TopicSchema::derived(topic.clone(), &estado_types()).expect("derived");
    let expected = definition(&union);
    let broker = PulsarBroker::builder(support::url())
        .schema(union)
        .connect()
        .await
        .expect("Pulsar is reachable (scripts/services up pulsar)");
    let mut consumer = broker
        .subscribe(SubscriptionOptions::new(&topic, "s"))
        .await
        .expect("subscribed");
    let fecha: DateTime<Utc> = "2026-11-30T10:00:00.123Z".parse().expect("a time");
    let aprobada = Aprobada {
        id_reserva: "r-1".into(),
        fecha,
    };
    let cancelada = Cancelada {
        id_reserva: "r-1".into(),
        fecha,
    };
    let pagada = Pagada {
        id_reserva: "r-1".into(),
        monto: 120.5,
        nota: None,
    };
    for message in [
        on_topic(&aprobada, &topic),
        on_topic(&cancelada, &topic),
        on_topic(&pagada, &topic),
    ] {
        broker.publish(&message).await.expect("published");
    }
    let mut received = Vec::new();
    while received.len() < 3 {
        let delivery = tokio::time::timeout(Duration::from_secs(15), consumer.receive())
            .await
            .expect("a delivery in time")
            .expect("received");
        consumer.ack(&delivery).await.expect("acked");
        received.push(delivery.message);
    }
    // Same key, so in order; each decodes as its own type (and not as the look-alike).
    assert_eq!(
        received[0].decode::<Aprobada>().expect("Aprobada").data,
        aprobada
    );
    assert!(received[0].decode::<Cancelada>().is_err());
    assert_eq!(
        received[1].decode::<Cancelada>().expect("Cancelada").data,
        cancelada
    );
    assert_eq!(received[2].decode::<Pagada>().expect("Pagada").data, pagada);
    assert_eq!(registered_schema(&topic).await, expected);
}
