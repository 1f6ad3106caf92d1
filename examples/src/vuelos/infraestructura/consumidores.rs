//! The consumer of `comandos-reserva` (`consumidores.py`): executes `ComandoCrearReserva`.

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
    match crear_reserva_en(uow, &*reservas, id, &datos).await {
        Ok(_) => Ok(()),
        // Retrying cannot fix a refused or duplicate reservation: acknowledge and say why.
        Err(error @ (Error::Domain(_) | Error::Conflict { .. })) => {
            tracing::warn!(%error, message_id = %mensaje.id, "ComandoCrearReserva refused; acknowledged without effect");
            Ok(())
        }
        Err(error) => Err(error),
    }
}
