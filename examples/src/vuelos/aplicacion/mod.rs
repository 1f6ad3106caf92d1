//! The application layer of `vuelos`: DTOs, the reservation factory, commands, queries and
//! their handlers.

pub mod comandos;
pub mod dto;
pub mod fabricas;
pub mod queries;

pub use comandos::{AprobarReserva, CancelarReserva, CrearReserva, PagarReserva, SolicitarReserva};
pub use fabricas::fabricar_reserva;
pub use queries::{
    ObtenerReserva, ObtenerReservasCanceladas, ObtenerReservasNoPagadas, ObtenerTodasReservas,
};
