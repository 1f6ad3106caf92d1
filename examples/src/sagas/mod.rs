//! `sagas`: the reservation saga of tutorial 8 (`modulos/sagas`), whose coordinator takes a new
//! reservation through payment (`pagos`), the GDS confirmation (`integracion_gds`) and its
//! approval (`vuelos`), and undoes what was done when a step fails.

pub mod coordinadores;
