//! Domain events of `vuelos` (`eventos.py`).

use chrono::{DateTime, Utc};
use seedwork::domain::EventMetadata;
use seedwork::prelude::DomainEvent;

use super::objetos_valor::EstadoReserva;

/// A reservation was created.
#[derive(Debug, Clone, DomainEvent)]
pub struct ReservaCreada {
    /// The reservation.
    pub id_reserva: String,
    /// Its client.
    pub id_cliente: String,
    /// Its state (Pendiente).
    pub estado: EstadoReserva,
    /// When it was created.
    pub fecha_creacion: DateTime<Utc>,
    /// Event id and time.
    pub metadata: EventMetadata,
}

/// A reservation was approved.
#[derive(Debug, Clone, DomainEvent)]
pub struct ReservaAprobada {
    /// The reservation.
    pub id_reserva: String,
    /// When.
    pub fecha_actualizacion: DateTime<Utc>,
    /// Event id and time.
    pub metadata: EventMetadata,
}

/// A reservation was cancelled.
#[derive(Debug, Clone, DomainEvent)]
pub struct ReservaCancelada {
    /// The reservation.
    pub id_reserva: String,
    /// When.
    pub fecha_actualizacion: DateTime<Utc>,
    /// Event id and time.
    pub metadata: EventMetadata,
}

/// A reservation was paid.
#[derive(Debug, Clone, DomainEvent)]
pub struct ReservaPagada {
    /// The reservation.
    pub id_reserva: String,
    /// When.
    pub fecha_actualizacion: DateTime<Utc>,
    /// Event id and time.
    pub metadata: EventMetadata,
}
