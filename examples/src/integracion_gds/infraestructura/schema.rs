//! The messages of `integracion_gds`, on the topics tutorial 8 names; the replies of
//! `evento-gds` travel as one union.

use serde::{Deserialize, Serialize};

use seedwork::{AvroSchema, IntegrationCommand, IntegrationEvent};

/// Where the saga asks for confirmations.
pub const TOPICO_CONFIRMAR: &str = "comando-confirmar-reserva";
/// Where the saga asks for a confirmation to be released.
pub const TOPICO_REVERTIR: &str = "comando-revertir-confirmacion";
/// Where `integracion_gds` answers.
pub const TOPICO_EVENTOS: &str = "evento-gds";

/// Confirm a reservation with the GDS (`ComandoConfirmarReserva`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationCommand)]
#[integration(topic = "comando-confirmar-reserva", name = "ComandoConfirmarReserva", key = reserva_id)]
#[avro(name = "ConfirmarReservaPayload")]
pub struct ComandoConfirmarReserva {
    /// The reservation.
    pub reserva_id: String,
}

/// Release a reservation's confirmation (`ComandoRevertirConfirmacion`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationCommand)]
#[integration(topic = "comando-revertir-confirmacion", name = "ComandoRevertirConfirmacion", key = reserva_id)]
#[avro(name = "RevertirConfirmacionPayload")]
pub struct ComandoRevertirConfirmacion {
    /// The reservation.
    pub reserva_id: String,
}

/// The GDS confirmed the reservation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct ReservaConfirmada {
    /// The confirmation.
    pub id: String,
    /// The reservation.
    pub reserva_id: String,
    /// When, epoch milliseconds.
    pub fecha_confirmacion: i64,
}

/// The GDS refused the reservation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct ConfirmacionFallida {
    /// The reservation.
    pub reserva_id: String,
    /// Why.
    pub razon: String,
}

/// The confirmation was released (or there was none to release).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct ConfirmacionRevertida {
    /// The confirmation.
    pub id: String,
    /// The reservation.
    pub reserva_id: String,
    /// When, epoch milliseconds.
    pub fecha_actualizacion: i64,
}

/// Everything `integracion_gds` answers on `evento-gds` (the tutorial's
/// `EventoConfirmacionGDS`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "evento-gds", key = reserva_id)]
pub enum EventoGds {
    /// Confirmed.
    ReservaConfirmada(ReservaConfirmada),
    /// Refused.
    ConfirmacionFallida(ConfirmacionFallida),
    /// Released.
    ConfirmacionRevertida(ConfirmacionRevertida),
}
