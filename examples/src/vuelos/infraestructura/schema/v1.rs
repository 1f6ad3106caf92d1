//! Version 1 of the messages `vuelos` exchanges over the broker.
//!
//! These types are the wire contract and depend on nothing else in the crate: the HTTP DTOs may
//! change without changing what travels, and a `v2` may change what travels without touching
//! the API. [`mapeadores`](super::super::mapeadores) converts between them and the application.

use serde::{Deserialize, Serialize};

use seedwork::{AvroSchema, IntegrationCommand, IntegrationEvent};

/// The topic of the tutorial's reservation event, [`EventoReservaCreada`] alone: its schema is
/// the one the Python services' `Record` classes register, so they read it and write it as in
/// the tutorial.
pub const TOPICO_EVENTOS: &str = "eventos-reserva";
/// The topic of a reservation's whole life, [`EventoReserva`]: created, approved, cancelled,
/// paid, one Avro union, in order per reservation. The notification service and the BFF read
/// it.
pub const TOPICO_CICLO: &str = "ciclo-reserva";
/// The topic of reservation commands.
pub const TOPICO_COMANDOS: &str = "comandos-reserva";
/// The reservation saga asks `vuelos` to approve a reservation (its last step).
pub const TOPICO_APROBAR: &str = "comando-aprobar-reserva";
/// The reservation saga asks `vuelos` to cancel a reservation (a compensation).
pub const TOPICO_CANCELAR: &str = "comando-cancelar-reserva";

/// A reservation was created (`EventoReservaCreada`): the tutorial's contract with the Python
/// services, on [`TOPICO_EVENTOS`].
///
/// Its schema is derived, and matches what the Python `EventoReservaCreada` registers: the
/// wire record `EventoReservaCreada` with the payload record `ReservaCreadaPayload` as its
/// `data`, every field `["null", T]` (`nullable`, as the Python client renders fields that are
/// not required). Whichever side registers first, the other passes the broker's `FULL` check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "eventos-reserva", name = "EventoReservaCreada", key = id_reserva)]
#[avro(name = "ReservaCreadaPayload", nullable)]
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

/// A reservation was approved (the payload of [`EventoReserva::Aprobada`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(name = "ReservaAprobadaPayload")]
pub struct EventoReservaAprobada {
    /// The reservation.
    pub id_reserva: String,
    /// When, epoch milliseconds.
    pub fecha_actualizacion: i64,
}

/// A reservation was cancelled (the payload of [`EventoReserva::Cancelada`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(name = "ReservaCanceladaPayload")]
pub struct EventoReservaCancelada {
    /// The reservation.
    pub id_reserva: String,
    /// When, epoch milliseconds.
    pub fecha_actualizacion: i64,
}

/// A reservation was paid (the payload of [`EventoReserva::Pagada`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(name = "ReservaPagadaPayload")]
pub struct EventoReservaPagada {
    /// The reservation.
    pub id_reserva: String,
    /// When, epoch milliseconds.
    pub fecha_actualizacion: i64,
}

/// `vuelos` could not approve a reservation the saga asked it to approve (the tutorial's
/// `AprobacionReservaFallida`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(name = "AprobacionReservaFallidaPayload")]
pub struct EventoAprobacionReservaFallida {
    /// The reservation.
    pub id_reserva: String,
    /// Why.
    pub razon: String,
    /// When, epoch milliseconds.
    pub fecha_actualizacion: i64,
}

/// The saga's request to approve a reservation (`AprobarReserva` over the broker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationCommand)]
#[integration(topic = "comando-aprobar-reserva", name = "ComandoAprobarReserva", key = id_reserva)]
pub struct ComandoAprobarReserva {
    /// The reservation.
    pub id_reserva: String,
}

/// The saga's request to cancel a reservation (`CancelarReserva` over the broker, a
/// compensation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationCommand)]
#[integration(topic = "comando-cancelar-reserva", name = "ComandoCancelarReserva", key = id_reserva)]
pub struct ComandoCancelarReserva {
    /// The reservation.
    pub id_reserva: String,
}

/// Everything that happens to a reservation, on [`TOPICO_CICLO`]: five message types on one
/// topic. Each variant travels as its own type (`EventoReservaCreada`, `EventoReservaAprobada`…)
/// with its payload as `data`; on Pulsar the topic's schema is the union of the five payload
/// records, derived from these types. One topic keeps a reservation's events in order for
/// their consumers (the same key, one partition); one handler takes them all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "ciclo-reserva", key = id_reserva)]
pub enum EventoReserva {
    /// Created (the same payload as on [`TOPICO_EVENTOS`]).
    Creada(EventoReservaCreada),
    /// Approved.
    Aprobada(EventoReservaAprobada),
    /// Cancelled.
    Cancelada(EventoReservaCancelada),
    /// Paid.
    Pagada(EventoReservaPagada),
    /// The saga's approval was refused.
    AprobacionFallida(EventoAprobacionReservaFallida),
}

/// Asks `vuelos` to create a reservation (`ComandoCrearReserva`); its consumer executes
/// `CrearReserva`.
///
/// The tutorial's Python `ComandoCrearReservaPayload` declares `id_usuario` and leaves the
/// itineraries as a TODO; the rest is our completion of it. Every field is `["null", T]` with a
/// `null` default (`nullable`), so the Python record and this one pass each other's `FULL`
/// check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationCommand)]
#[integration(topic = "comandos-reserva", name = "ComandoCrearReserva", key = id_reserva)]
#[avro(name = "ComandoCrearReservaPayload", nullable)]
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

/// An itinerary on the wire (Avro record `Itinerario`).
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

#[cfg(test)]
mod tests {
    use super::*;
    use seedwork::messaging::schema::{registered, AvroSchema as _, Schema};
    use seedwork::messaging::{IntegrationMessage, Message};
    use serde_json::{json, Value};

    /// The payload record the Python `EventoReservaCreada` registers (the "wire fact" of
    /// `original-system.md`), without the wire record around it.
    fn python_reserva_creada() -> Value {
        json!({"type": "record", "name": "ReservaCreadaPayload", "fields": [
            {"name": "id_reserva", "type": ["null", "string"]},
            {"name": "id_cliente", "type": ["null", "string"]},
            {"name": "estado", "type": ["null", "string"]},
            {"name": "fecha_creacion", "type": ["null", "long"]},
        ]})
    }

    #[test]
    fn the_derived_creation_payload_is_the_python_one_with_null_defaults() {
        let mut ours = EventoReservaCreada::avro_schema().to_json();
        // The only difference: a `null` default on each field, which only matters to a reader
        // missing the field, and lets a later version add fields compatibly.
        for field in ours["fields"].as_array_mut().unwrap() {
            assert_eq!(
                field.as_object_mut().unwrap().remove("default"),
                Some(Value::Null)
            );
        }
        assert_eq!(ours, python_reserva_creada());
    }

    #[test]
    fn every_event_type_is_registered_on_its_topic() {
        let on = |topic: &str| -> Vec<&'static str> {
            registered()
                .into_iter()
                .filter(|s| s.topic == topic)
                .map(|s| s.message_type)
                .collect()
        };
        // v1 and its successor (schema/v2.rs): the topic's schema is the latest.
        assert_eq!(
            on(TOPICO_EVENTOS),
            ["EventoReservaCreada", "EventoReservaCreada"]
        );
        assert_eq!(
            on(TOPICO_CICLO),
            [
                "EventoAprobacionReservaFallida",
                "EventoReservaAprobada",
                "EventoReservaCancelada",
                "EventoReservaCreada",
                "EventoReservaPagada"
            ]
        );
        assert_eq!(on(TOPICO_COMANDOS), ["ComandoCrearReserva"]);
        assert_eq!(on(TOPICO_APROBAR), ["ComandoAprobarReserva"]);
        assert_eq!(on(TOPICO_CANCELAR), ["ComandoCancelarReserva"]);
        assert!(matches!(EventoReserva::avro_schema(), Schema::Union(ref b) if b.len() == 5));
    }

    #[test]
    fn a_lifecycle_event_travels_as_its_own_type() {
        let aprobada = EventoReserva::Aprobada(EventoReservaAprobada {
            id_reserva: "r-1".into(),
            fecha_actualizacion: 5,
        });
        let message = Message::encode(&aprobada, "vuelos").unwrap();
        assert_eq!(message.topic, TOPICO_CICLO);
        assert_eq!(message.envelope.message_type, "EventoReservaAprobada");
        assert_eq!(message.key.as_deref(), Some("r-1"));
        assert_eq!(message.decode::<EventoReserva>().unwrap().data, aprobada);
        assert_eq!(EventoReserva::TYPES.len(), 5);
    }
}
