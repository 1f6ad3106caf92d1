//! The `Reserva` aggregate (`entidades.py`), with guarded state transitions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use seedwork::domain::{check_rule, AggregateState, DomainError, EventMetadata};
use seedwork::prelude::AggregateRoot;

use super::eventos::{ReservaAprobada, ReservaCancelada, ReservaCreada, ReservaPagada};
use super::objetos_valor::{EstadoReserva, Itinerario};
use super::reglas::{ItinerarioConVuelos, LlegadaDespuesDeSalida, MinimoUnItinerario, RutaValida};

/// A flight reservation (aggregate root).
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
        let mut reserva = Reserva {
            id,
            id_cliente,
            estado: EstadoReserva::Pendiente,
            itinerarios,
            fecha_creacion,
            fecha_actualizacion,
            state: AggregateState::new(),
        };
        reserva.record(ReservaCreada {
            id_reserva: reserva.id.clone(),
            id_cliente: reserva.id_cliente.clone(),
            estado: reserva.estado,
            fecha_creacion,
            metadata: EventMetadata::now(),
        });
        Ok(reserva)
    }

    fn transition(
        &mut self,
        action: &'static str,
        allowed_from: &[EstadoReserva],
        to: EstadoReserva,
    ) -> Result<DateTime<Utc>, DomainError> {
        if !allowed_from.contains(&self.estado) {
            return Err(DomainError::InvalidTransition {
                entity: "Reserva",
                state: self.estado.to_string(),
                action,
            });
        }
        self.estado = to;
        self.fecha_actualizacion = Utc::now();
        Ok(self.fecha_actualizacion)
    }

    /// Pendiente → Aprobada; records [`ReservaAprobada`].
    pub fn aprobar(&mut self) -> Result<(), DomainError> {
        let at = self.transition(
            "aprobar",
            &[EstadoReserva::Pendiente],
            EstadoReserva::Aprobada,
        )?;
        let id_reserva = self.id.clone();
        self.record(ReservaAprobada {
            id_reserva,
            fecha_actualizacion: at,
            metadata: EventMetadata::now(),
        });
        Ok(())
    }

    /// Pendiente or Aprobada → Cancelada; records [`ReservaCancelada`].
    pub fn cancelar(&mut self) -> Result<(), DomainError> {
        let at = self.transition(
            "cancelar",
            &[EstadoReserva::Pendiente, EstadoReserva::Aprobada],
            EstadoReserva::Cancelada,
        )?;
        let id_reserva = self.id.clone();
        self.record(ReservaCancelada {
            id_reserva,
            fecha_actualizacion: at,
            metadata: EventMetadata::now(),
        });
        Ok(())
    }

    /// Aprobada → Pagada; records [`ReservaPagada`]. A pending reservation must be approved
    /// first; a cancelled one cannot be paid.
    pub fn pagar(&mut self) -> Result<(), DomainError> {
        let at = self.transition("pagar", &[EstadoReserva::Aprobada], EstadoReserva::Pagada)?;
        let id_reserva = self.id.clone();
        self.record(ReservaPagada {
            id_reserva,
            fecha_actualizacion: at,
            metadata: EventMetadata::now(),
        });
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
