//! The infrastructure of `vuelos`: integration schemas, the wire ↔ application mappers, the
//! domain → integration mappers, the command consumer and the projections that keep the read
//! models.

pub mod consumidores;
pub mod despachadores;
pub mod mapeadores;
pub mod proyecciones;
pub mod schema;
