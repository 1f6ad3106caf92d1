//! `notificaciones`: consumes `eventos-reserva` and "sends the email" — the tutorial's
//! notification service, here a message handler with its own subscription.

use seedwork::prelude::*;

use crate::vuelos::infraestructura::EventoReservaCreada;

/// The subscription the notification service reads with.
pub const SUBSCRIPTION: &str = "sub-notificacion-eventos-reservas";

/// The lines the tutorial's notification service prints for a received event.
pub fn lineas_de_notificacion(evento: &EventoReservaCreada) -> [String; 4] {
    let payload = &evento.0;
    [
        "=========================================".to_string(),
        format!(
            "Mensaje Recibido: 'id_reserva={}, id_cliente={}, estado={}, fecha_creacion={}'",
            payload.id_reserva, payload.id_cliente, payload.estado, payload.fecha_creacion
        ),
        "=========================================".to_string(),
        "==== Envía correo a usuario ====".to_string(),
    ]
}

/// Logs the notification for every reservation event.
pub struct NotificarReserva;

#[seedwork::async_trait]
impl MessageHandler<EventoReservaCreada> for NotificarReserva {
    async fn handle(
        &self,
        message: Envelope<EventoReservaCreada>,
        _uow: &mut UnitOfWork,
    ) -> Result<()> {
        for line in lineas_de_notificacion(&message.data) {
            println!("{line}");
        }
        Ok(())
    }
}
