//! The consumers of `pagos`: a payment, and a payment given back.

use seedwork::domain::DomainError;
use seedwork::prelude::*;

use super::schema::{
    ComandoPagarReserva, ComandoRevertirPago, EventoPago, PagoFallido, PagoRevertido, ReservaPagada,
};
use crate::pagos::dominio::Pago;
use crate::pagos::Pagos;
use crate::vuelos::infraestructura::consumidores::{DEMO_FALLA, DEMO_SILENCIO};

/// The tutorial's subscription for payments.
pub const SUSCRIPCION_PAGAR: &str = "sub-com-pagos-reservar";
/// The tutorial's subscription for payments given back.
pub const SUSCRIPCION_REVERTIR: &str = "sub-com-pagos-revertir";

/// Charges a reservation, or answers why not: a refused payment is the saga's `PagoFallido`,
/// never an error (an error would be retried, and the saga would wait for its deadline).
#[seedwork::message_handler]
async fn pagar_reserva(
    mensaje: Envelope<ComandoPagarReserva>,
    uow: &mut UnitOfWork,
    pagos: Pagos,
) -> Result<()> {
    let comando = mensaje.data;
    let fallido = |razon: String| {
        EventoPago::PagoFallido(PagoFallido {
            reserva_id: comando.reserva_id.clone(),
            razon,
        })
    };
    if uow.baggage(DEMO_FALLA) == Some("pago") {
        return uow.enqueue(&fallido(format!("{DEMO_FALLA}=pago")));
    }
    let mut pago =
        match Pago::realizar(comando.reserva_id.clone(), comando.monto, comando.monto_vat) {
            Ok(pago) => pago,
            Err(error @ DomainError::BusinessRule { .. }) => {
                return uow.enqueue(&fallido(error.to_string()))
            }
            Err(error) => return Err(error.into()),
        };
    match pagos.add(uow, &mut pago).await {
        Ok(()) => {}
        // Paid already (the saga asked twice in two conversations): answer with that payment.
        Err(Error::Conflict { .. }) => {
            pago = pagos
                .get_for_update(uow, &comando.reserva_id)
                .await?
                .ok_or_else(|| Error::not_found("Pago", &comando.reserva_id))?;
        }
        Err(error) => return Err(error),
    }
    if uow.baggage(DEMO_SILENCIO) == Some("pago") {
        // Charged, but the answer is lost: the saga's deadline will undo it.
        return Ok(());
    }
    uow.enqueue(&EventoPago::ReservaPagada(ReservaPagada {
        id: pago.id.clone(),
        reserva_id: pago.id,
        monto: pago.monto,
        monto_vat: pago.monto_vat,
        fecha_creacion: pago.fecha_creacion.timestamp_millis(),
    }))
}

/// Gives a reservation's payment back. With no payment to give back (the charge never
/// happened, or its command was late) it answers `PagoRevertido` all the same: a compensation
/// must be safe to run whatever happened before.
#[seedwork::message_handler]
async fn revertir_pago(
    mensaje: Envelope<ComandoRevertirPago>,
    uow: &mut UnitOfWork,
    pagos: Pagos,
) -> Result<()> {
    let reserva_id = mensaje.data.reserva_id;
    if let Some(mut pago) = pagos.get_for_update(uow, &reserva_id).await? {
        pago.revertir();
        pagos.update(uow, &mut pago).await?;
    }
    uow.enqueue(&EventoPago::PagoRevertido(PagoRevertido {
        id: reserva_id.clone(),
        reserva_id,
        fecha_actualizacion: chrono::Utc::now().timestamp_millis(),
    }))
}
