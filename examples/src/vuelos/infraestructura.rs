//! The infrastructure of `vuelos`: its integration events (`schema::v1`) and the mapping from
//! domain events to them.

use serde::{Deserialize, Serialize};

use seedwork::messaging::{IntegrationEvent, IntegrationMessage, MessageKind};

use super::dominio::ReservaCreada;

/// Version 1 of the integration schema.
pub mod schema {
    /// `schema/v1`.
    pub mod v1 {
        pub use super::super::{EventoReservaCreada, ReservaCreadaPayload};
    }
}

/// The payload of [`EventoReservaCreada`] (`ReservaCreadaPayload`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReservaCreadaPayload {
    /// The reservation.
    pub id_reserva: String,
    /// Its client.
    pub id_cliente: String,
    /// Its state.
    pub estado: String,
    /// Creation time, epoch milliseconds.
    pub fecha_creacion: i64,
}

/// The integration event published on `eventos-reserva` (`EventoReservaCreada`); its payload is
/// the envelope's `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventoReservaCreada(pub ReservaCreadaPayload);

impl IntegrationMessage for EventoReservaCreada {
    const TOPIC: &'static str = "eventos-reserva";
    const TYPE: &'static str = "EventoReservaCreada";
    const VERSION: &'static str = "v1";
    const KIND: MessageKind = MessageKind::Event;
    fn key(&self) -> Option<String> {
        Some(self.0.id_reserva.clone())
    }
}
impl IntegrationEvent for EventoReservaCreada {}

/// Maps the domain event to the integration event (the `ReservaCreadaIntegracion` signal).
pub fn publicar_reserva_creada(evento: &ReservaCreada) -> EventoReservaCreada {
    EventoReservaCreada(ReservaCreadaPayload {
        id_reserva: evento.id_reserva.clone(),
        id_cliente: evento.id_cliente.clone(),
        estado: evento.estado.clone(),
        fecha_creacion: evento.fecha_creacion,
    })
}
