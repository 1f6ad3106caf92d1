//! Flight reservations (`vuelos`): the `Reserva` aggregate, the `CrearReserva` command and the
//! `EventoReservaCreada` integration event on `eventos-reserva`.

pub mod aplicacion;
pub mod dominio;
pub mod infraestructura;
