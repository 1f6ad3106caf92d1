//! Avro schemas derived from payload types (`TopicSchema::avro_derived`): what they render to,
//! that one written to mirror a Python `Record` class passes the registry's `FULL` check
//! against the Python one both ways, and a round trip through real Pulsar.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use seedwork::messaging::{Publisher, Subscriber, SubscriptionOptions};
use seedwork::testing::contract::broker::{n_of, ping, unique_topic};
use seedwork_pulsar::compatibility::{check, Compatibility};
use seedwork_pulsar::{PulsarBroker, TopicSchema};

/// A leg's airport: a nested record used twice.
#[derive(Serialize, Deserialize, AvroSchema)]
struct Aeropuerto {
    codigo: String,
}

/// An enum of unit variants: an Avro enum.
#[derive(Serialize, Deserialize, AvroSchema)]
enum Estado {
    Pendiente,
    Aprobada,
}

#[derive(Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "alpes.vuelos")]
struct Reserva {
    id_reserva: String,
    estado: Estado,
    origen: Aeropuerto,
    destino: Aeropuerto,
    escalas: Vec<String>,
    etiquetas: HashMap<String, String>,
    #[avro(default = "null")]
    nota: Option<String>,
}

fn wire(schema: &TopicSchema) -> Value {
    serde_json::from_str(schema.definition().expect("an Avro definition")).expect("JSON")
}

#[test]
fn a_derived_schema_nests_the_payload_as_nullable_data() {
    let schema = TopicSchema::avro_derived::<Reserva>("reservas", "EventoReserva").expect("ok");
    let wire = wire(&schema);
    assert_eq!(wire["name"], "EventoReserva");
    let data = &wire["fields"][0];
    assert_eq!(data["name"], "data");
    assert_eq!(data["default"], Value::Null);
    assert!(
        data.get("default").is_some(),
        "data has a null default: {data}"
    );
    assert_eq!(data["type"][0], "null");
    let payload = &data["type"][1];
    assert_eq!(payload["name"], "Reserva");
    assert_eq!(payload["namespace"], "alpes.vuelos");
    let field = |name: &str| {
        payload["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("field {name}: {payload}"))
            .clone()
    };
    assert_eq!(field("id_reserva")["type"], "string");
    assert_eq!(
        field("estado")["type"]["symbols"],
        json!(["Pendiente", "Aprobada"])
    );
    // The nested record is written out once, then referred to by its full name.
    assert_eq!(field("origen")["type"]["name"], "Aeropuerto");
    assert_eq!(field("destino")["type"], "alpes.vuelos.Aeropuerto");
    assert_eq!(
        field("escalas")["type"],
        json!({"type": "array", "items": "string"})
    );
    assert_eq!(
        field("etiquetas")["type"],
        json!({"type": "map", "values": "string"})
    );
    assert_eq!(field("nota")["type"], json!(["null", "string"]));
    assert_eq!(field("nota")["default"], Value::Null);
    assert!(field("nota").get("default").is_some());
}

/// The tutorial's `ReservaCreadaPayload` as the Python `Record` class registers it: every field
/// `["null", T]`.
const PYTHON_EVENTO: &str = r#"{"type":"record","name":"EventoReservaCreada","fields":[
    {"name":"data","type":["null",{"type":"record","name":"ReservaCreadaPayload","fields":[
        {"name":"id_reserva","type":["null","string"]},
        {"name":"id_cliente","type":["null","string"]},
        {"name":"estado","type":["null","string"]},
        {"name":"fecha_creacion","type":["null","long"]}]}]}]}"#;

/// The same payload in Rust, mirroring the Python class field for field, plus a field the
/// Python class lacks, with a default.
#[derive(Serialize, Deserialize, AvroSchema)]
struct ReservaCreadaPayload {
    id_reserva: Option<String>,
    id_cliente: Option<String>,
    estado: Option<String>,
    fecha_creacion: Option<i64>,
    #[avro(default = "null")]
    fecha_actualizacion: Option<i64>,
}

/// The Python shape without its nullable wrappers.
#[derive(Serialize, Deserialize, AvroSchema)]
#[avro(name = "ReservaCreadaPayload")]
struct ReservaCreadaRequired {
    id_reserva: String,
    id_cliente: String,
    estado: String,
    fecha_creacion: i64,
}

#[test]
fn a_payload_mirroring_the_python_class_passes_full_against_it_both_ways() {
    let ours =
        TopicSchema::avro_derived::<ReservaCreadaPayload>("e", "EventoReservaCreada").expect("ok");
    let ours = ours.definition().expect("Avro");
    check(PYTHON_EVENTO, ours, Compatibility::Full).expect("ours may follow Python's");
    check(ours, PYTHON_EVENTO, Compatibility::Full).expect("Python's may follow ours");

    // Without the nullable wrappers, a Python writer's null cannot be read: not compatible.
    let required =
        TopicSchema::avro_derived::<ReservaCreadaRequired>("e", "EventoReservaCreada").expect("ok");
    assert!(check(
        PYTHON_EVENTO,
        required.definition().expect("Avro"),
        Compatibility::Full
    )
    .is_err());
}

/// The contract suite's `Ping` payload, derived.
#[derive(Serialize, Deserialize, AvroSchema)]
#[avro(name = "ContractPingPayload")]
struct PingPayload {
    n: i64,
    text: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar: scripts/services up pulsar"]
async fn a_derived_schema_is_registered_and_carries_messages() {
    let topic = unique_topic("derived");
    let schema =
        TopicSchema::avro_derived::<PingPayload>(topic.clone(), "ContractPing").expect("ok");
    let definition: Value = wire(&schema);
    let broker = PulsarBroker::builder(support::url())
        .schema(schema)
        .connect()
        .await
        .expect("Pulsar is reachable (scripts/services up pulsar)");
    let mut consumer = broker
        .subscribe(SubscriptionOptions::new(&topic, "s"))
        .await
        .expect("subscribed");
    broker
        .publish(&ping(&topic, 7, None))
        .await
        .expect("published");
    let delivery = tokio::time::timeout(Duration::from_secs(15), consumer.receive())
        .await
        .expect("a delivery in time")
        .expect("received");
    assert_eq!(n_of(&delivery), 7);
    consumer.ack(&delivery).await.expect("acked");

    let url = format!(
        "{}/admin/v2/schemas/public/default/{topic}/schema",
        support::admin_url()
    );
    let info: Value = serde_json::from_str(&support::admin_get(&url).await).expect("JSON");
    assert_eq!(info["type"], "AVRO", "{info}");
    let registered: Value =
        serde_json::from_str(info["data"].as_str().expect("schema text")).expect("JSON");
    assert_eq!(
        registered, definition,
        "the registry holds the derived schema"
    );
}
