//! The application layer of `vuelos`: the `CrearReserva` command and its handler.

use seedwork::memory::MemoryRepository;
use seedwork::prelude::*;

use super::dominio::Reserva;

/// Command: create a reservation (`CrearReserva`). Returns the reservation id.
#[derive(Debug, Clone)]
pub struct CrearReserva {
    /// The reservation id chosen by the client.
    pub id: String,
    /// The client.
    pub id_cliente: String,
}

impl Command for CrearReserva {
    type Output = String;
    const NAME: &'static str = "CrearReserva";
}

/// Handles [`CrearReserva`]: builds the aggregate and stores it in the unit of work.
pub struct CrearReservaHandler {
    /// Where reservations are kept.
    pub reservas: MemoryRepository<Reserva>,
}

#[seedwork::async_trait]
impl CommandHandler<CrearReserva> for CrearReservaHandler {
    async fn handle(&self, command: CrearReserva, uow: &mut UnitOfWork) -> Result<String> {
        let mut reserva = Reserva::crear(command.id, command.id_cliente)?;
        self.reservas.add(uow, &mut reserva).await?;
        Ok(reserva.id().clone())
    }
}
