//! The consumer of `comandos-reserva` (`consumidores.py`): executes `ComandoCrearReserva`.

use seedwork::domain::DomainError;
use seedwork::prelude::*;

use super::schema::v1::ComandoCrearReserva;
use crate::vuelos::aplicacion::comandos::{crear_reserva_en, Reservas};
use crate::vuelos::aplicacion::dto::ReservaEntradaDto;

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
