//! The domain of `vuelos`: the `Reserva` aggregate, its state and its events.

use std::any::Any;
use std::fmt;

use seedwork::domain::{check_rule, AggregateState, BusinessRule, DomainEvent, Entity};
use seedwork::prelude::*;

/// The state of a reservation (`EstadoReserva`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EstadoReserva {
    /// Created, waiting for approval (the initial state).
    Pendiente,
    /// Approved.
    Aprobada,
    /// Paid.
    Pagada,
    /// Cancelled.
    Cancelada,
}

impl fmt::Display for EstadoReserva {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EstadoReserva::Pendiente => "Pendiente",
            EstadoReserva::Aprobada => "Aprobada",
            EstadoReserva::Pagada => "Pagada",
            EstadoReserva::Cancelada => "Cancelada",
        })
    }
}

/// A flight reservation (aggregate root).
#[derive(Debug, Clone)]
pub struct Reserva {
    id: String,
    id_cliente: String,
    estado: EstadoReserva,
    state: AggregateState,
}

/// Business rule: a reservation id is not blank.
struct IdNoVacio<'a>(&'a str);

impl BusinessRule for IdNoVacio<'_> {
    fn is_satisfied(&self) -> bool {
        !self.0.trim().is_empty()
    }
    fn message(&self) -> String {
        "el id de la reserva no puede estar vacío".into()
    }
}

impl Reserva {
    /// Creates a pending reservation and records [`ReservaCreada`].
    pub fn crear(id: String, id_cliente: String) -> Result<Self> {
        check_rule(&IdNoVacio(&id))?;
        let mut reserva = Reserva {
            id: id.clone(),
            id_cliente: id_cliente.clone(),
            estado: EstadoReserva::Pendiente,
            state: AggregateState::new(),
        };
        reserva.record(ReservaCreada {
            id_reserva: id,
            id_cliente,
            estado: EstadoReserva::Pendiente.to_string(),
            fecha_creacion: seedwork::messaging::now_millis(),
            metadata: EventMetadata::now(),
        });
        Ok(reserva)
    }

    /// The client who made it.
    pub fn id_cliente(&self) -> &str {
        &self.id_cliente
    }

    /// Its state.
    pub fn estado(&self) -> EstadoReserva {
        self.estado
    }
}

impl Entity for Reserva {
    type Id = String;
    fn id(&self) -> &String {
        &self.id
    }
}

impl AggregateRoot for Reserva {
    const TYPE: &'static str = "Reserva";
    fn state(&self) -> &AggregateState {
        &self.state
    }
    fn state_mut(&mut self) -> &mut AggregateState {
        &mut self.state
    }
}

/// Domain event: a reservation was created.
#[derive(Debug, Clone)]
pub struct ReservaCreada {
    /// The reservation.
    pub id_reserva: String,
    /// Its client.
    pub id_cliente: String,
    /// Its state at creation.
    pub estado: String,
    /// Creation time, epoch milliseconds.
    pub fecha_creacion: i64,
    /// Event id and time.
    pub metadata: EventMetadata,
}

impl DomainEvent for ReservaCreada {
    fn event_name(&self) -> &'static str {
        "ReservaCreada"
    }
    fn metadata(&self) -> &EventMetadata {
        &self.metadata
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
