//! The application layer of `vuelos`: DTOs, commands, queries and their handlers.

pub mod comandos;
pub mod dto;
pub mod queries;

pub use comandos::{AprobarReserva, CancelarReserva, CrearReserva, PagarReserva};
pub use queries::{
    ObtenerReserva, ObtenerReservasCanceladas, ObtenerReservasNoPagadas, ObtenerTodasReservas,
};
