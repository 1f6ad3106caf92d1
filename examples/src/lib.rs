//! AlpesPartners, the reference system of `seedwork`: the course tutorial's flight reservations
//! (`vuelos`), clients (`cliente`), the `notificaciones` service and the `ui` BFF, over an HTTP
//! API.
//!
//! Each module keeps the tutorial's layering — `dominio`, `aplicacion`, `infraestructura` — so a
//! student can copy its shape into their own project. [`system::start`] runs everything in one
//! process.

pub mod api;
pub mod cliente;
pub mod notificaciones;
pub mod system;
pub mod texto;
pub mod ui;
pub mod vuelos;
