//! Domain events of `vuelos` (`eventos.py`), and [`EventoReserva`], the enum of them that the
//! reservation's event stream stores (tutorial 7's base class `EventoReserva`).

use chrono::{DateTime, Utc};
use seedwork::domain::EventMetadata;
use seedwork::prelude::DomainEvent;
use serde::{Deserialize, Serialize};

use super::objetos_valor::{EstadoReserva, Itinerario};

/// A reservation was created. It carries everything the reservation starts with, so that
/// replaying the stream rebuilds it.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
pub struct ReservaCreada {
    /// The reservation.
    pub id_reserva: String,
    /// Its client.
    pub id_cliente: String,
    /// Its state (Pendiente).
    pub estado: EstadoReserva,
    /// Its itineraries.
    pub itinerarios: Vec<Itinerario>,
    /// When it was created.
    pub fecha_creacion: DateTime<Utc>,
    /// When it was last changed (at creation, given by the caller).
    pub fecha_actualizacion: DateTime<Utc>,
    /// Event id and time.
    pub metadata: EventMetadata,
}

/// A reservation was approved.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
pub struct ReservaAprobada {
    /// The reservation.
    pub id_reserva: String,
    /// When.
    pub fecha_actualizacion: DateTime<Utc>,
    /// Event id and time.
    pub metadata: EventMetadata,
}

/// A reservation was cancelled.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
pub struct ReservaCancelada {
    /// The reservation.
    pub id_reserva: String,
    /// When.
    pub fecha_actualizacion: DateTime<Utc>,
    /// Event id and time.
    pub metadata: EventMetadata,
}

/// A reservation was paid.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
pub struct ReservaPagada {
    /// The reservation.
    pub id_reserva: String,
    /// When.
    pub fecha_actualizacion: DateTime<Utc>,
    /// Event id and time.
    pub metadata: EventMetadata,
}

/// Everything that happens to a reservation: what its stream stores, in order. Handlers and
/// mappers still subscribe to each event (`ReservaCreada`, …): the derive routes a variant to
/// its event's handlers.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
pub enum EventoReserva {
    /// See [`ReservaCreada`].
    Creada(ReservaCreada),
    /// See [`ReservaAprobada`].
    Aprobada(ReservaAprobada),
    /// See [`ReservaCancelada`].
    Cancelada(ReservaCancelada),
    /// See [`ReservaPagada`].
    Pagada(ReservaPagada),
}

impl EventoReserva {
    /// The reservation it happened to.
    pub fn id_reserva(&self) -> &str {
        match self {
            EventoReserva::Creada(e) => &e.id_reserva,
            EventoReserva::Aprobada(e) => &e.id_reserva,
            EventoReserva::Cancelada(e) => &e.id_reserva,
            EventoReserva::Pagada(e) => &e.id_reserva,
        }
    }
}
