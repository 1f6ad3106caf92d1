//! The application layer of `vuelos`: DTOs, the reservation factory, commands, queries and
//! their handlers, and the read models the list queries answer from.

pub mod comandos;
pub mod dto;
pub mod fabricas;
pub mod queries;
pub mod vistas;

pub use comandos::{AprobarReserva, CancelarReserva, CrearReserva, PagarReserva, SolicitarReserva};
pub use fabricas::fabricar_reserva;
pub use queries::{
    ObtenerReserva, ObtenerReservasCanceladas, ObtenerReservasNoPagadas, ObtenerTodasReservas,
};
pub use vistas::{ObtenerTotalesReservas, ReservaAnalitica, ReservaListada, TotalReservasDto};
