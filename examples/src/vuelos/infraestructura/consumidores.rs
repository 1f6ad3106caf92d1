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
    let comando = mensaje.data;
    let datos = ReservaEntradaDto {
        id: Some(comando.id_reserva.clone()),
        id_cliente: Some(comando.id_usuario),
        fecha_creacion: comando.fecha_creacion,
        fecha_actualizacion: comando.fecha_actualizacion,
        itinerarios: comando.itinerarios,
    };
    match crear_reserva_en(uow, &*reservas, comando.id_reserva, &datos).await {
        Ok(_) => Ok(()),
        // Retrying cannot fix a refused or duplicate reservation: acknowledge and say why.
        Err(error @ (Error::Domain(_) | Error::Conflict { .. })) => {
            tracing::warn!(%error, message_id = %mensaje.id, "ComandoCrearReserva rechazado");
            Ok(())
        }
        Err(error) => Err(error),
    }
}
