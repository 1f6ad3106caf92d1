//! A reservation's confirmation with the GDS.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use seedwork::domain::AggregateState;

/// Where a confirmation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EstadoConfirmacion {
    /// Confirmed with the GDS.
    Confirmada,
    /// Confirmed, then released (the saga's compensation).
    Revertida,
}

/// The GDS confirmation of one reservation (its id is the reservation's).
#[derive(Debug, Clone, Serialize, Deserialize, seedwork::AggregateRoot)]
pub struct ConfirmacionGds {
    /// The reservation.
    pub id: String,
    /// Where it is.
    pub estado: EstadoConfirmacion,
    /// When it was confirmed.
    pub fecha_confirmacion: DateTime<Utc>,
    /// When it last changed.
    pub fecha_actualizacion: DateTime<Utc>,
    #[serde(skip)]
    state: AggregateState,
}

impl ConfirmacionGds {
    /// Confirms reservation `id_reserva`.
    pub fn confirmar(id_reserva: String) -> Self {
        let ahora = Utc::now();
        ConfirmacionGds {
            id: id_reserva,
            estado: EstadoConfirmacion::Confirmada,
            fecha_confirmacion: ahora,
            fecha_actualizacion: ahora,
            state: AggregateState::new(),
        }
    }

    /// Releases the confirmation; one released already stays so.
    pub fn revertir(&mut self) {
        if self.estado == EstadoConfirmacion::Confirmada {
            self.estado = EstadoConfirmacion::Revertida;
            self.fecha_actualizacion = Utc::now();
        }
    }
}
