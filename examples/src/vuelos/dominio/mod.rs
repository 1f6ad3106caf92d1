//! The domain of `vuelos`: the `Reserva` aggregate, its value objects, rules and events.

pub mod entidades;
pub mod eventos;
pub mod objetos_valor;
pub mod reglas;

pub use entidades::Reserva;
pub use eventos::{EventoReserva, ReservaAprobada, ReservaCancelada, ReservaCreada, ReservaPagada};
pub use objetos_valor::{Aeropuerto, Codigo, EstadoReserva, Itinerario, Leg, Odo, Segmento};

#[cfg(test)]
mod tests;
