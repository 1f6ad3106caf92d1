//! Flight reservations (`vuelos`), in the tutorial's three layers.

pub mod aplicacion;
pub mod dominio;
pub mod infraestructura;
