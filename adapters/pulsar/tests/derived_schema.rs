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
    // Two versions of the type are registered for the topic (`Creada`, `CreadaV2` below): the
    // topic takes the latest.
    let expected = v2_schema(topic);
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

// --- Versions -------------------------------------------------------------------------------

/// `v2` of [`Creada`]: one field more, `Option`al, so it has a `null` default.
#[derive(Debug, PartialEq, Serialize, Deserialize, IntegrationEvent)]
#[integration(
    topic = "derived-schema-creada",
    name = "EventoReservaCreada",
    version = "v2",
    key = id_reserva
)]
#[avro(name = "ReservaCreadaPayload", nullable)]
struct CreadaV2 {
    id_reserva: String,
    id_cliente: String,
    estado: String,
    fecha_creacion: i64,
    fecha_actualizacion: Option<i64>,
    canal: Option<String>,
}

#[seedwork::upcaster]
fn creada_a_v2(v1: Creada) -> CreadaV2 {
    CreadaV2 {
        id_reserva: v1.id_reserva,
        id_cliente: v1.id_cliente,
        estado: v1.estado,
        fecha_creacion: v1.fecha_creacion,
        fecha_actualizacion: v1.fecha_actualizacion,
        canal: Some("anterior a v2".into()),
    }
}

/// A change no reader of `v1` survives: `fecha_creacion` becomes text.
#[derive(Serialize, Deserialize, IntegrationEvent)]
#[integration(
    topic = "derived-schema-roto",
    name = "EventoReservaCreada",
    version = "v3"
)]
#[avro(name = "ReservaCreadaPayload", nullable)]
struct CreadaRota {
    id_reserva: String,
    id_cliente: String,
    estado: String,
    fecha_creacion: String,
    fecha_actualizacion: Option<i64>,
}

async fn receive(consumer: &mut dyn seedwork::messaging::Consumer) -> Message {
    let delivery = tokio::time::timeout(Duration::from_secs(15), consumer.receive())
        .await
        .expect("a delivery in time")
        .expect("received");
    consumer.ack(&delivery).await.expect("acked");
    delivery.message
}

fn v1_schema(topic: &str) -> TopicSchema {
    TopicSchema::derived(topic, &[MessageSchema::of::<Creada>()]).expect("derived")
}

fn v2_schema(topic: &str) -> TopicSchema {
    TopicSchema::derived(
        topic,
        &[
            MessageSchema::of::<Creada>(),
            MessageSchema::of::<CreadaV2>(),
        ],
    )
    .expect("derived")
}

fn creada(n: i64) -> Creada {
    Creada {
        id_reserva: format!("r-{n}"),
        id_cliente: "c-1".into(),
        estado: "Pendiente".into(),
        fecha_creacion: n,
        fecha_actualizacion: None,
    }
}

#[test]
fn each_version_follows_the_previous_under_the_namespace_strategy() {
    let v1 = v1_schema("t");
    let v2 = v2_schema("t");
    let v1 = v1.definition().expect("Avro");
    let v2 = v2.definition().expect("Avro");
    assert!(
        v2.contains("canal"),
        "the topic takes the latest version: {v2}"
    );
    seedwork_pulsar::compatibility::check_versions(&[PYTHON_EVENTO, v1, v2], Compatibility::Full)
        .expect("Python's, v1 and v2 form a FULL-compatible history");
    let broken = TopicSchema::derived("t", &[MessageSchema::of::<CreadaRota>()]).expect("derived");
    assert!(check(v2, broken.definition().expect("Avro"), Compatibility::Full).is_err());
}

#[test]
fn adding_a_type_to_a_union_topic_is_not_full_compatible() {
    // Readers of the two-type union cannot read the third type's messages: under FULL a union
    // topic's set of types is fixed (a new type goes to a new topic, or a new union version
    // once every consumer reads it: BACKWARD).
    let [aprobada, cancelada, pagada] = estado_types();
    let two = TopicSchema::derived("t", &[aprobada, cancelada]).expect("derived");
    let three = TopicSchema::derived("t", &[aprobada, cancelada, pagada]).expect("derived");
    let (two, three) = (two.definition().unwrap(), three.definition().unwrap());
    assert!(check(two, three, Compatibility::Full).is_err());
    check(two, three, Compatibility::Backward).expect("new readers read the old union");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar: scripts/services up pulsar"]
async fn v1_and_v2_read_each_other_through_pulsar() {
    let topic = unique_topic("derived-versions");
    let connect = |schema: TopicSchema| async move {
        PulsarBroker::builder(support::url())
            .schema(schema)
            .connect()
            .await
            .expect("Pulsar is reachable (scripts/services up pulsar)")
    };
    let old = connect(v1_schema(&topic)).await;
    let new = connect(v2_schema(&topic)).await;
    let mut old_reader = old
        .subscribe(SubscriptionOptions::new(&topic, "v1"))
        .await
        .expect("a v1 consumer");
    let mut new_reader = new
        .subscribe(SubscriptionOptions::new(&topic, "v2"))
        .await
        .expect("a v2 consumer");

    // A v1 producer, then a v2 one (the registry takes v2 as the topic's next version).
    old.publish(&on_topic(&creada(1), &topic))
        .await
        .expect("v1 published");
    let v2 = CreadaV2 {
        canal: Some("web".into()),
        ..creada_a_v2(creada(2))
    };
    new.publish(&on_topic(&v2, &topic))
        .await
        .expect("v2 published");

    // The v2 consumer: the v1 message through the upcaster, the v2 one as it is.
    let first = receive(&mut *new_reader).await;
    assert_eq!(first.envelope.specversion, "v1");
    assert_eq!(
        first.decode::<CreadaV2>().expect("upcast").data,
        creada_a_v2(creada(1))
    );
    let second = receive(&mut *new_reader).await;
    assert_eq!(second.decode::<CreadaV2>().expect("v2").data, v2);
    // The v1 consumer reads both; the field it does not know is dropped.
    let first = receive(&mut *old_reader).await;
    assert_eq!(first.decode::<Creada>().expect("v1").data, creada(1));
    let second = receive(&mut *old_reader).await;
    assert_eq!(second.envelope.specversion, "v2");
    assert_eq!(
        second.decode::<Creada>().expect("v1 reads v2").data,
        creada(2)
    );
    assert!(
        second.envelope.data.get("canal").is_none(),
        "{:?}",
        second.envelope.data
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar: scripts/services up pulsar"]
async fn a_breaking_version_is_refused_by_the_registry() {
    let topic = unique_topic("derived-broken");
    let good = PulsarBroker::builder(support::url())
        .schema(v2_schema(&topic))
        .connect()
        .await
        .expect("Pulsar is reachable (scripts/services up pulsar)");
    good.publish(&on_topic(&creada_a_v2(creada(1)), &topic))
        .await
        .expect("v2 published");
    let broken = PulsarBroker::builder(support::url())
        .schema(
            TopicSchema::derived(&topic, &[MessageSchema::of::<CreadaRota>()]).expect("derived"),
        )
        .connect()
        .await
        .expect("connected");
    let rota = CreadaRota {
        id_reserva: "r".into(),
        id_cliente: "c".into(),
        estado: "Pendiente".into(),
        fecha_creacion: "ayer".into(),
        fecha_actualizacion: None,
    };
    let error = broken
        .publish(&on_topic(&rota, &topic))
        .await
        .expect_err("the registry refuses the breaking schema");
    assert!(
        matches!(error, seedwork::Error::Broker(_)) && !error.is_transient(),
        "a non-transient broker refusal: {error:?}"
    );
    let latest = registered_schema(&topic).await;
    assert!(
        latest.to_string().contains("canal"),
        "v2 is still the topic's schema: {latest}"
    );
}
