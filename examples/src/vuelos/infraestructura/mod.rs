//! The infrastructure of `vuelos`: integration schemas, the wire ↔ application mappers, the
//! domain → integration mappers and the command consumer.

pub mod consumidores;
pub mod despachadores;
pub mod mapeadores;
pub mod schema;
