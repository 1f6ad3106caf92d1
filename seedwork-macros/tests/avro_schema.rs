//! `#[derive(AvroSchema)]` and the schemas the integration derives register.

use std::collections::BTreeMap;

use seedwork::messaging::schema::{registered, AvroSchema};
use seedwork::messaging::MessageKind;
use seedwork::{AvroSchema, IntegrationCommand, IntegrationEvent};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Serialize, Deserialize, AvroSchema)]
#[avro(nullable)]
struct Aeropuerto {
    codigo: String,
    nombre: String,
}

#[derive(Serialize, Deserialize, AvroSchema)]
#[avro(nullable)]
struct Leg {
    fecha_salida: String,
    origen: Aeropuerto,
    destino: Aeropuerto,
}

#[derive(Serialize, Deserialize, AvroSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Estado {
    Pendiente,
    #[serde(rename = "OK")]
    Aprobada,
}

/// A payload as the Python client would declare it: every field nullable, the payload record
/// named apart from the message.
#[derive(Serialize, Deserialize, IntegrationCommand)]
#[integration(topic = "avro-schema-comandos", name = "ComandoReservar", key = id)]
#[avro(name = "ComandoReservarPayload", nullable)]
struct Reservar {
    id: String,
    legs: Vec<Leg>,
    #[serde(skip)]
    #[allow(dead_code)]
    interno: u8,
}

/// A Rust-first payload: plain types, an option with its `null` default, a timestamp.
#[derive(Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "avro-schema-eventos", version = "v2")]
#[avro(namespace = "pruebas.v2")]
struct Reservado {
    id: String,
    estado: Estado,
    cuando: chrono::DateTime<chrono::Utc>,
    nota: Option<String>,
    etiquetas: BTreeMap<String, i32>,
}

#[test]
fn a_payload_derived_as_the_python_client_renders_it() {
    assert_eq!(
        Reservar::avro_schema().to_json(),
        json!({"type": "record", "name": "ComandoReservarPayload", "fields": [
            {"name": "id", "type": ["null", "string"], "default": null},
            {"name": "legs", "type": ["null", {"type": "array", "items":
                {"type": "record", "name": "Leg", "fields": [
                    {"name": "fecha_salida", "type": ["null", "string"], "default": null},
                    {"name": "origen", "type": ["null", {"type": "record", "name": "Aeropuerto", "fields": [
                        {"name": "codigo", "type": ["null", "string"], "default": null},
                        {"name": "nombre", "type": ["null", "string"], "default": null},
                    ]}], "default": null},
                    {"name": "destino", "type": ["null", "Aeropuerto"], "default": null},
                ]}}], "default": null},
        ]})
    );
}

#[test]
fn a_rust_first_payload_keeps_its_types() {
    assert_eq!(
        Reservado::avro_schema().to_json(),
        json!({"type": "record", "name": "Reservado", "namespace": "pruebas.v2", "fields": [
            {"name": "id", "type": "string"},
            {"name": "estado", "type": {"type": "enum", "name": "Estado", "symbols": ["PENDIENTE", "OK"]}},
            {"name": "cuando", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "nota", "type": ["null", "string"], "default": null},
            {"name": "etiquetas", "type": {"type": "map", "values": "int"}},
        ]})
    );
}

#[test]
fn the_integration_derives_register_their_schemas() {
    let all = registered();
    let find = |topic: &str| {
        all.iter()
            .find(|s| s.topic == topic)
            .unwrap_or_else(|| panic!("no schema registered for {topic}: {all:?}"))
    };
    let comando = find("avro-schema-comandos");
    assert_eq!(comando.message_type, "ComandoReservar");
    assert_eq!(comando.version, "v1");
    assert_eq!(comando.kind, MessageKind::Command);
    assert_eq!(comando.payload(), Reservar::avro_schema());
    let evento = find("avro-schema-eventos");
    assert_eq!(
        (evento.message_type, evento.version, evento.kind),
        ("Reservado", "v2", MessageKind::Event)
    );
    assert_eq!(evento.payload(), Reservado::avro_schema());
}
