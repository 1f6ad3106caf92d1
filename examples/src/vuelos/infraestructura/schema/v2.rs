//! Version 2 of the reservation-created event, next to [`v1`].
//!
//! `v2` adds `creada_en`, the creation time as RFC 3339 text, which the Python services' `v1`
//! record does not have. It is a compatible change under the `FULL` strategy the project sets on
//! the Pulsar namespace: the field is `["null", "string"]` with a `null` default and comes
//! last, so
//! - a `v1` consumer (the Python `EventoReservaCreada` record, or a Rust one built on
//!   [`v1::EventoReservaCreada`]) keeps reading what `vuelos`
//!   publishes now, and skips the field;
//! - a `v2` consumer reads what `v1` producers still send through [`a_v2`], the upcaster,
//!   which computes the field from `fecha_creacion`.
//!
//! The payload record keeps its name (`ReservaCreadaPayload`): Avro resolves records by name,
//! so a renamed record would be another type. `docs/schemas.md` says when `v1` may go.

use serde::{Deserialize, Serialize};

use seedwork::IntegrationEvent;

use super::v1;

/// A reservation was created (`EventoReservaCreada`, `v2`), on `eventos-reserva`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationEvent)]
#[integration(
    topic = "eventos-reserva",
    name = "EventoReservaCreada",
    version = "v2",
    key = id_reserva
)]
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
    /// Creation time, RFC 3339 (new in `v2`).
    pub creada_en: Option<String>,
}

/// RFC 3339 text of epoch milliseconds (`None` out of chrono's range).
pub fn rfc3339(millis: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// `v1` → `v2`: what a `v2` consumer reads when a `v1` message arrives.
#[seedwork::upcaster]
pub fn a_v2(anterior: v1::EventoReservaCreada) -> EventoReservaCreada {
    EventoReservaCreada {
        creada_en: rfc3339(anterior.fecha_creacion),
        id_reserva: anterior.id_reserva,
        id_cliente: anterior.id_cliente,
        estado: anterior.estado,
        fecha_creacion: anterior.fecha_creacion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seedwork::messaging::schema::AvroSchema as _;
    use seedwork::messaging::Message;
    use serde_json::Value;

    fn anterior() -> v1::EventoReservaCreada {
        v1::EventoReservaCreada {
            id_reserva: "r-1".into(),
            id_cliente: "c-1".into(),
            estado: "Pendiente".into(),
            fecha_creacion: 1_764_460_800_000,
        }
    }

    #[test]
    fn v2_only_adds_a_defaulted_field_at_the_end() {
        let v1 = v1::EventoReservaCreada::avro_schema().to_json();
        let v2 = EventoReservaCreada::avro_schema().to_json();
        assert_eq!(v2["name"], v1["name"], "the record keeps its name");
        let (old, new) = (
            v1["fields"].as_array().unwrap(),
            v2["fields"].as_array().unwrap(),
        );
        assert_eq!(new[..old.len()], old[..]);
        assert_eq!(new.len(), old.len() + 1);
        assert_eq!(new[old.len()]["default"], Value::Null);
    }

    #[test]
    fn a_v1_message_reads_as_v2_through_the_upcaster() {
        let message = Message::encode(&anterior(), "vuelos").unwrap();
        let read = message.decode::<EventoReservaCreada>().unwrap();
        assert_eq!(read.specversion, "v1");
        assert_eq!(
            read.data.creada_en.as_deref(),
            Some("2025-11-30T00:00:00.000Z")
        );
        assert_eq!(read.data.fecha_creacion, anterior().fecha_creacion);
    }

    #[test]
    fn a_v2_message_reads_as_v1() {
        let message = Message::encode(&a_v2(anterior()), "vuelos").unwrap();
        assert_eq!(message.envelope.specversion, "v2");
        assert_eq!(
            message.decode::<v1::EventoReservaCreada>().unwrap().data,
            anterior()
        );
    }
}
