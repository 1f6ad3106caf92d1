//! AlpesPartners, the reference system of `seedwork`: the course tutorial's flight reservations
//! (`vuelos`), clients (`cliente`), the `notificaciones` service and the `ui` BFF, over an HTTP
//! API; and tutorial 8's reservation saga (`sagas`) across `pagos` and `integracion_gds`.
//!
//! Each module keeps the tutorial's layering — `dominio`, `aplicacion`, `infraestructura` — so a
//! student can copy its shape into their own project. [`system::start`] runs everything in one
//! process.

pub mod api;
pub mod cliente;
pub mod integracion_gds;
pub mod notificaciones;
pub mod pagos;
pub mod sagas;
pub mod system;
pub mod texto;
pub mod ui;
pub mod vuelos;
