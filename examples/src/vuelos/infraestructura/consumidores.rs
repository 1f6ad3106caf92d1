//! The consumers of `vuelos` (`consumidores.py`): `ComandoCrearReserva` from
//! `comandos-reserva`, and the reservation saga's `ComandoAprobarReserva` and
//! `ComandoCancelarReserva`.

use seedwork::domain::DomainError;
use seedwork::prelude::*;

use super::schema::v1::{
    ComandoAprobarReserva, ComandoCancelarReserva, ComandoCrearReserva,
    EventoAprobacionReservaFallida, EventoReserva, EventoReservaCancelada,
};
use crate::vuelos::aplicacion::comandos::{crear_reserva_en, Reservas};
use crate::vuelos::aplicacion::dto::ReservaEntradaDto;
use crate::vuelos::dominio::EstadoReserva;

/// The subscription the command consumer reads with (Shared: several copies share the work).
pub const SUSCRIPCION_COMANDOS: &str = "aeroalpes-sub-comandos";

#[seedwork::message_handler]
async fn ejecutar_crear_reserva(
    mensaje: Envelope<ComandoCrearReserva>,
    uow: &mut UnitOfWork,
    reservas: Reservas,
) -> Result<()> {
    let id = mensaje.data.id_reserva.clone();
    let datos = ReservaEntradaDto::from(mensaje.data);
    match crear_reserva_en(uow, &*reservas, id.clone(), &datos).await {
        Ok(_) => Ok(()),
        // The inbox has already absorbed a redelivery of this very command, so a taken id
        // means another command claimed it: a refusal no retry changes. `Bus::consume` rejects
        // refusals to the dead-letter topic with this reason.
        Err(Error::Conflict { .. }) => Err(DomainError::BusinessRule {
            rule: "IdReservaUnico",
            message: format!("the reservation id `{id}` is already taken"),
        }
        .into()),
        Err(error) => Err(error),
    }
}

/// The subscription through which `vuelos` takes the saga's approvals.
pub const SUSCRIPCION_APROBAR: &str = "aeroalpes-sub-comando-aprobar";
/// The subscription through which `vuelos` takes the saga's cancellations.
pub const SUSCRIPCION_CANCELAR: &str = "aeroalpes-sub-comando-cancelar";

/// The demonstration switch the saga's steps read from the conversation's baggage
/// (`baggage: demo-falla=pago|gds|aprobacion` on the request that created the reservation):
/// the named step fails, so the compensations can be watched.
pub const DEMO_FALLA: &str = "demo-falla";

/// The demonstration switch for deadlines (`baggage: demo-silencio=pago|gds`): the named
/// service does its work but its answer is lost, so the saga's step times out and takes its
/// failure path, undoing the work too.
pub const DEMO_SILENCIO: &str = "demo-silencio";

/// Approves a reservation for the saga (its last step). A refusal — the reservation is gone,
/// or no longer pending — is the saga's failure event, `AprobacionReservaFallida`, so the saga
/// compensates instead of waiting for its deadline.
#[seedwork::message_handler]
async fn ejecutar_aprobar_reserva(
    mensaje: Envelope<ComandoAprobarReserva>,
    uow: &mut UnitOfWork,
    reservas: Reservas,
) -> Result<()> {
    let id = mensaje.data.id_reserva;
    let refused = |razon: String| {
        EventoReserva::AprobacionFallida(EventoAprobacionReservaFallida {
            id_reserva: id.clone(),
            razon,
            fecha_actualizacion: chrono::Utc::now().timestamp_millis(),
        })
    };
    if uow.baggage(DEMO_FALLA) == Some("aprobacion") {
        return uow.enqueue(&refused(format!("{DEMO_FALLA}=aprobacion")));
    }
    let Some(mut reserva) = reservas.get_for_update(uow, &id).await? else {
        return uow.enqueue(&refused(format!("no reservation `{id}`")));
    };
    match reserva.aprobar() {
        Ok(()) => reservas.update(uow, &mut reserva).await,
        Err(error) => uow.enqueue(&refused(error.to_string())),
    }
}

/// Cancels a reservation for the saga (a compensation), which awaits its `ReservaCancelada`.
/// A reservation cancelled already (by hand, during the saga) is announced cancelled again,
/// unchanged: a compensation is confirmed even when nothing was left to undo, or the saga would
/// wait for it forever.
#[seedwork::message_handler]
async fn ejecutar_cancelar_reserva(
    mensaje: Envelope<ComandoCancelarReserva>,
    uow: &mut UnitOfWork,
    reservas: Reservas,
) -> Result<()> {
    let id = mensaje.data.id_reserva;
    let Some(mut reserva) = reservas.get_for_update(uow, &id).await? else {
        return Err(Error::not_found("Reserva", id));
    };
    if reserva.estado() == EstadoReserva::Cancelada {
        return uow.enqueue(&EventoReserva::Cancelada(EventoReservaCancelada {
            id_reserva: id,
            fecha_actualizacion: reserva.fecha_actualizacion().timestamp_millis(),
        }));
    }
    reserva.cancelar()?;
    reservas.update(uow, &mut reserva).await
}
