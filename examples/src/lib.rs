//! AlpesPartners, the reference system of `seedwork`: the course tutorial's flight reservations
//! (`vuelos`), and the `notificaciones` service that reacts to its integration events.
//!
//! Each module keeps the tutorial's layering — `dominio`, `aplicacion`, `infraestructura` — so
//! a student can copy its shape into their own project.

pub mod notificaciones;
pub mod vuelos;
