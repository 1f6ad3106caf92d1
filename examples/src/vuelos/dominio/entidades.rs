//! The `Reserva` aggregate (`entidades.py`), with guarded state transitions; event-sourced, as
//! in tutorial 7: its state is the fold of its [`EventoReserva`]s.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use seedwork::domain::{check_rule, AggregateState, DomainError, EventMetadata};
use seedwork::prelude::AggregateRoot;

use seedwork::eventsourcing::EventSourced;

use super::eventos::{
    EventoReserva, ReservaAprobada, ReservaCancelada, ReservaCreada, ReservaPagada,
};
use super::objetos_valor::{EstadoReserva, Itinerario};
use super::reglas::{ItinerarioConVuelos, LlegadaDespuesDeSalida, MinimoUnItinerario, RutaValida};

/// A flight reservation (aggregate root). Each behaviour checks its rules, then raises the event
/// that [`apply`](EventSourced::apply) folds into the state: the same code builds it from a
/// command and from its stored stream.
#[derive(Debug, Clone, Serialize, Deserialize, AggregateRoot)]
pub struct Reserva {
    id: String,
    id_cliente: String,
    estado: EstadoReserva,
    itinerarios: Vec<Itinerario>,
    fecha_creacion: DateTime<Utc>,
    fecha_actualizacion: DateTime<Utc>,
    #[serde(skip)]
    state: AggregateState,
}

impl Reserva {
    /// Creates a pending reservation, checking the business rules, and records
    /// [`ReservaCreada`].
    pub fn crear(
        id: String,
        id_cliente: String,
        itinerarios: Vec<Itinerario>,
        fecha_creacion: DateTime<Utc>,
        fecha_actualizacion: DateTime<Utc>,
    ) -> Result<Self, DomainError> {
        if id.trim().is_empty() {
            return Err(DomainError::invalid_value(
                "id",
                "the reservation id cannot be blank",
            ));
        }
        check_rule(&MinimoUnItinerario(&itinerarios))?;
        for itinerario in &itinerarios {
            check_rule(&ItinerarioConVuelos(itinerario))?;
            for leg in itinerario.legs() {
                check_rule(&RutaValida(leg))?;
                check_rule(&LlegadaDespuesDeSalida(leg))?;
            }
        }
        let mut reserva = Reserva::empty(&id);
        reserva.raise(EventoReserva::Creada(ReservaCreada {
            id_reserva: id,
            id_cliente,
            estado: EstadoReserva::Pendiente,
            itinerarios,
            fecha_creacion,
            fecha_actualizacion,
            metadata: EventMetadata::now(),
        }));
        Ok(reserva)
    }

    /// Checks that `action` is allowed in the current state; the time of the change.
    fn permite(
        &self,
        action: &'static str,
        allowed_from: &[EstadoReserva],
    ) -> Result<DateTime<Utc>, DomainError> {
        if !allowed_from.contains(&self.estado) {
            return Err(DomainError::InvalidTransition {
                entity: "Reserva",
                state: self.estado.to_string(),
                action,
            });
        }
        Ok(Utc::now())
    }

    /// Pendiente → Aprobada; records [`ReservaAprobada`].
    pub fn aprobar(&mut self) -> Result<(), DomainError> {
        let fecha_actualizacion = self.permite("aprobar", &[EstadoReserva::Pendiente])?;
        self.raise(EventoReserva::Aprobada(ReservaAprobada {
            id_reserva: self.id.clone(),
            fecha_actualizacion,
            metadata: EventMetadata::now(),
        }));
        Ok(())
    }

    /// Pendiente or Aprobada → Cancelada; records [`ReservaCancelada`].
    pub fn cancelar(&mut self) -> Result<(), DomainError> {
        let fecha_actualizacion = self.permite(
            "cancelar",
            &[EstadoReserva::Pendiente, EstadoReserva::Aprobada],
        )?;
        self.raise(EventoReserva::Cancelada(ReservaCancelada {
            id_reserva: self.id.clone(),
            fecha_actualizacion,
            metadata: EventMetadata::now(),
        }));
        Ok(())
    }

    /// Aprobada → Pagada; records [`ReservaPagada`]. A pending reservation must be approved
    /// first; a cancelled one cannot be paid.
    pub fn pagar(&mut self) -> Result<(), DomainError> {
        let fecha_actualizacion = self.permite("pagar", &[EstadoReserva::Aprobada])?;
        self.raise(EventoReserva::Pagada(ReservaPagada {
            id_reserva: self.id.clone(),
            fecha_actualizacion,
            metadata: EventMetadata::now(),
        }));
        Ok(())
    }

    /// The client.
    pub fn id_cliente(&self) -> &str {
        &self.id_cliente
    }

    /// The state.
    pub fn estado(&self) -> EstadoReserva {
        self.estado
    }

    /// The itineraries.
    pub fn itinerarios(&self) -> &[Itinerario] {
        &self.itinerarios
    }

    /// Creation time.
    pub fn fecha_creacion(&self) -> DateTime<Utc> {
        self.fecha_creacion
    }

    /// Last change.
    pub fn fecha_actualizacion(&self) -> DateTime<Utc> {
        self.fecha_actualizacion
    }
}

impl EventSourced for Reserva {
    type Event = EventoReserva;

    fn empty(id: &String) -> Self {
        Reserva {
            id: id.clone(),
            id_cliente: String::new(),
            estado: EstadoReserva::Pendiente,
            itinerarios: Vec::new(),
            fecha_creacion: DateTime::<Utc>::UNIX_EPOCH,
            fecha_actualizacion: DateTime::<Utc>::UNIX_EPOCH,
            state: AggregateState::new(),
        }
    }

    fn apply(&mut self, event: &EventoReserva) {
        match event {
            EventoReserva::Creada(creada) => {
                self.id_cliente = creada.id_cliente.clone();
                self.estado = creada.estado;
                self.itinerarios = creada.itinerarios.clone();
                self.fecha_creacion = creada.fecha_creacion;
                self.fecha_actualizacion = creada.fecha_actualizacion;
            }
            EventoReserva::Aprobada(e) => {
                self.estado = EstadoReserva::Aprobada;
                self.fecha_actualizacion = e.fecha_actualizacion;
            }
            EventoReserva::Cancelada(e) => {
                self.estado = EstadoReserva::Cancelada;
                self.fecha_actualizacion = e.fecha_actualizacion;
            }
            EventoReserva::Pagada(e) => {
                self.estado = EstadoReserva::Pagada;
                self.fecha_actualizacion = e.fecha_actualizacion;
            }
        }
    }
}
