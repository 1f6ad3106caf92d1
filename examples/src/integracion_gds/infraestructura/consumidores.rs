//! The consumers of `integracion_gds`: a confirmation, and a confirmation released.

use seedwork::prelude::*;

use super::schema::{
    ComandoConfirmarReserva, ComandoRevertirConfirmacion, ConfirmacionFallida,
    ConfirmacionRevertida, EventoGds, ReservaConfirmada,
};
use crate::integracion_gds::dominio::ConfirmacionGds;
use crate::integracion_gds::Confirmaciones;
use crate::vuelos::infraestructura::consumidores::{DEMO_FALLA, DEMO_SILENCIO};

/// The tutorial's subscription for confirmations.
pub const SUSCRIPCION_CONFIRMAR: &str = "sub-com-gds-confirmacion";
/// The tutorial's subscription for released confirmations.
pub const SUSCRIPCION_REVERTIR: &str = "sub-com-gds-revertir-confirmacion";

/// Confirms a reservation with the GDS, or answers `ConfirmacionFallida`.
#[seedwork::message_handler]
async fn confirmar_reserva(
    mensaje: Envelope<ComandoConfirmarReserva>,
    uow: &mut UnitOfWork,
    confirmaciones: Confirmaciones,
) -> Result<()> {
    let reserva_id = mensaje.data.reserva_id;
    if uow.baggage(DEMO_FALLA) == Some("gds") {
        return uow.enqueue(&EventoGds::ConfirmacionFallida(ConfirmacionFallida {
            reserva_id,
            razon: format!("{DEMO_FALLA}=gds"),
        }));
    }
    let confirmacion = match confirmaciones.get_for_update(uow, &reserva_id).await? {
        // Confirmed already: the same answer again.
        Some(confirmacion) => confirmacion,
        None => {
            let mut confirmacion = ConfirmacionGds::confirmar(reserva_id.clone());
            confirmaciones.add(uow, &mut confirmacion).await?;
            confirmacion
        }
    };
    if uow.baggage(DEMO_SILENCIO) == Some("gds") {
        // Confirmed, but the answer is lost: the saga's deadline will undo it.
        return Ok(());
    }
    uow.enqueue(&EventoGds::ReservaConfirmada(ReservaConfirmada {
        id: confirmacion.id.clone(),
        reserva_id: confirmacion.id,
        fecha_confirmacion: confirmacion.fecha_confirmacion.timestamp_millis(),
    }))
}

/// Releases a reservation's confirmation; with none to release it answers
/// `ConfirmacionRevertida` all the same (a compensation is safe to run whatever happened).
#[seedwork::message_handler]
async fn revertir_confirmacion(
    mensaje: Envelope<ComandoRevertirConfirmacion>,
    uow: &mut UnitOfWork,
    confirmaciones: Confirmaciones,
) -> Result<()> {
    let reserva_id = mensaje.data.reserva_id;
    if let Some(mut confirmacion) = confirmaciones.get_for_update(uow, &reserva_id).await? {
        confirmacion.revertir();
        confirmaciones.update(uow, &mut confirmacion).await?;
    }
    uow.enqueue(&EventoGds::ConfirmacionRevertida(ConfirmacionRevertida {
        id: reserva_id.clone(),
        reserva_id,
        fecha_actualizacion: chrono::Utc::now().timestamp_millis(),
    }))
}
