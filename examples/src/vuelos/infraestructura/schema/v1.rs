//! Version 1 of the messages `vuelos` exchanges over the broker.
//!
//! These types are the wire contract and depend on nothing else in the crate: the HTTP DTOs may
//! change without changing what travels, and a `v2` may change what travels without touching
//! the API. [`mapeadores`](super::super::mapeadores) converts between them and the application.

use serde::{Deserialize, Serialize};

use seedwork::{AvroSchema, IntegrationCommand, IntegrationEvent};

/// The topic of reservation events.
pub const TOPICO_EVENTOS: &str = "eventos-reserva";
/// The topic of reservation commands.
pub const TOPICO_COMANDOS: &str = "comandos-reserva";

/// A reservation was created (`EventoReservaCreada`; its `data` is the tutorial's
/// `ReservaCreadaPayload`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "eventos-reserva", name = "EventoReservaCreada", key = id_reserva)]
pub struct EventoReservaCreada {
    /// The reservation.
    pub id_reserva: String,
    /// Its client.
    pub id_cliente: String,
    /// Its state.
    pub estado: String,
    /// Creation time, epoch milliseconds.
    pub fecha_creacion: i64,
}

/// A reservation was approved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "eventos-reserva", name = "EventoReservaAprobada", key = id_reserva)]
pub struct EventoReservaAprobada {
    /// The reservation.
    pub id_reserva: String,
    /// When, epoch milliseconds.
    pub fecha_actualizacion: i64,
}

/// A reservation was cancelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "eventos-reserva", name = "EventoReservaCancelada", key = id_reserva)]
pub struct EventoReservaCancelada {
    /// The reservation.
    pub id_reserva: String,
    /// When, epoch milliseconds.
    pub fecha_actualizacion: i64,
}

/// A reservation was paid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "eventos-reserva", name = "EventoReservaPagada", key = id_reserva)]
pub struct EventoReservaPagada {
    /// The reservation.
    pub id_reserva: String,
    /// When, epoch milliseconds.
    pub fecha_actualizacion: i64,
}

/// Asks `vuelos` to create a reservation (`ComandoCrearReserva`); its consumer executes
/// `CrearReserva`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationCommand)]
#[integration(topic = "comandos-reserva", name = "ComandoCrearReserva", key = id_reserva)]
pub struct ComandoCrearReserva {
    /// The user asking (`id_usuario` in the tutorial); the reservation's client.
    pub id_usuario: String,
    /// The reservation id to create.
    pub id_reserva: String,
    /// Creation time (ISO-8601), if the caller gave one.
    #[serde(default)]
    pub fecha_creacion: Option<String>,
    /// Last change (ISO-8601), if the caller gave one.
    #[serde(default)]
    pub fecha_actualizacion: Option<String>,
    /// The itineraries.
    pub itinerarios: Vec<Itinerario>,
}

/// An itinerary on the wire (Avro record `Itinerario` of [`ESQUEMA_COMANDOS`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(nullable)]
pub struct Itinerario {
    /// Its origin-destination pairs.
    pub odos: Vec<Odo>,
}

/// An origin-destination pair on the wire (Avro record `Odo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(nullable)]
pub struct Odo {
    /// Its segments.
    pub segmentos: Vec<Segmento>,
}

/// A segment on the wire (Avro record `Segmento`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(nullable)]
pub struct Segmento {
    /// Its legs.
    pub legs: Vec<Leg>,
}

/// A leg on the wire (Avro record `Leg`); dates are ISO-8601 strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(nullable)]
pub struct Leg {
    /// Departure.
    pub fecha_salida: String,
    /// Arrival.
    pub fecha_llegada: String,
    /// From.
    pub origen: Aeropuerto,
    /// To.
    pub destino: Aeropuerto,
}

/// An airport on the wire (Avro record `Aeropuerto`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(nullable)]
pub struct Aeropuerto {
    /// Code.
    pub codigo: String,
    /// Name.
    pub nombre: String,
}

/// The Avro wire record of [`TOPICO_EVENTOS`] when the broker is Pulsar.
///
/// The first four payload fields are exactly what the tutorial's Python `EventoReservaCreada`
/// registers (the Python client puts only the class's own field `data` on the wire; the
/// envelope travels in message properties). `fecha_actualizacion` carries the approve, cancel
/// and pay events; it has a `null` default, so this schema and the Python one pass each other's
/// `FULL` compatibility check whichever registers first, and sits last so a Python reader
/// decoding with its own schema stops before it.
pub const ESQUEMA_EVENTOS: &str = r#"{"type":"record","name":"EventoReservaCreada","fields":[{"name":"data","type":["null",{"type":"record","name":"ReservaCreadaPayload","fields":[{"name":"id_reserva","type":["null","string"]},{"name":"id_cliente","type":["null","string"]},{"name":"estado","type":["null","string"]},{"name":"fecha_creacion","type":["null","long"]},{"name":"fecha_actualizacion","type":["null","long"],"default":null}]}]}]}"#;

/// The Avro wire record of [`TOPICO_COMANDOS`] when the broker is Pulsar.
///
/// The tutorial's Python `ComandoCrearReservaPayload` declares `id_usuario` and leaves the
/// itineraries as a TODO; the rest is our completion of it, every added field with a `null`
/// default (see [`ESQUEMA_EVENTOS`]). The nested records are [`Itinerario`], [`Odo`],
/// [`Segmento`], [`Leg`] and [`Aeropuerto`], field for field.
pub const ESQUEMA_COMANDOS: &str = r#"{"type":"record","name":"ComandoCrearReserva","fields":[{"name":"data","type":["null",{"type":"record","name":"ComandoCrearReservaPayload","fields":[{"name":"id_usuario","type":["null","string"]},{"name":"id_reserva","type":["null","string"],"default":null},{"name":"fecha_creacion","type":["null","string"],"default":null},{"name":"fecha_actualizacion","type":["null","string"],"default":null},{"name":"itinerarios","type":["null",{"type":"array","items":{"type":"record","name":"Itinerario","fields":[{"name":"odos","type":["null",{"type":"array","items":{"type":"record","name":"Odo","fields":[{"name":"segmentos","type":["null",{"type":"array","items":{"type":"record","name":"Segmento","fields":[{"name":"legs","type":["null",{"type":"array","items":{"type":"record","name":"Leg","fields":[{"name":"fecha_salida","type":["null","string"]},{"name":"fecha_llegada","type":["null","string"]},{"name":"origen","type":["null",{"type":"record","name":"Aeropuerto","fields":[{"name":"codigo","type":["null","string"]},{"name":"nombre","type":["null","string"]}]}]},{"name":"destino","type":["null","Aeropuerto"]}]}}]}]}}]}]}}]}]}}],"default":null}]}]}]}"#;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The schema the Python `EventoReservaCreada` registers (the "wire fact").
    const PYTHON_EVENTOS: &str = r#"{"type":"record","name":"EventoReservaCreada","fields":[{"name":"data","type":["null",{"type":"record","name":"ReservaCreadaPayload","fields":[{"name":"id_reserva","type":["null","string"]},{"name":"id_cliente","type":["null","string"]},{"name":"estado","type":["null","string"]},{"name":"fecha_creacion","type":["null","long"]}]}]}]}"#;

    fn payload_fields(schema: &str) -> Vec<Value> {
        let schema: Value = serde_json::from_str(schema).expect("valid JSON");
        schema["fields"][0]["type"][1]["fields"]
            .as_array()
            .expect("a payload record")
            .clone()
    }

    #[test]
    fn the_event_schema_starts_with_the_python_one_and_only_adds_defaulted_fields() {
        let ours = payload_fields(ESQUEMA_EVENTOS);
        let python = payload_fields(PYTHON_EVENTOS);
        assert_eq!(ours[..python.len()], python[..]);
        for added in &ours[python.len()..] {
            assert_eq!(added["default"], Value::Null, "{added}");
            assert_eq!(added["type"][0], "null", "{added}");
        }
    }

    #[test]
    fn every_event_field_is_in_the_event_schema() {
        let names: Vec<String> = payload_fields(ESQUEMA_EVENTOS)
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect();
        let samples = [
            serde_json::to_value(EventoReservaCreada {
                id_reserva: "r".into(),
                id_cliente: "c".into(),
                estado: "Pendiente".into(),
                fecha_creacion: 1,
            }),
            serde_json::to_value(EventoReservaAprobada {
                id_reserva: "r".into(),
                fecha_actualizacion: 1,
            }),
        ];
        for sample in samples {
            for key in sample.unwrap().as_object().unwrap().keys() {
                assert!(
                    names.contains(key),
                    "`{key}` is missing from ESQUEMA_EVENTOS"
                );
            }
        }
    }

    #[test]
    fn the_command_schema_keeps_the_python_field_first() {
        let fields = payload_fields(ESQUEMA_COMANDOS);
        assert_eq!(
            fields[0],
            json!({"name": "id_usuario", "type": ["null", "string"]})
        );
        assert!(fields[1..].iter().all(|f| f["default"] == Value::Null));
    }
}
