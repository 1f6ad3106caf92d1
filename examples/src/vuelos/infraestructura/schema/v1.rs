//! Version 1 of the messages `vuelos` exchanges over the broker.

use serde::{Deserialize, Serialize};

use seedwork::{IntegrationCommand, IntegrationEvent};

use crate::vuelos::aplicacion::dto::ItinerarioDto;

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
    pub itinerarios: Vec<ItinerarioDto>,
}
