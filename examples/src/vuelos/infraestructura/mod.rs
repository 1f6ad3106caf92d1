//! The infrastructure of `vuelos`: integration schemas, the domain → integration mappers and
//! the command consumer.

pub mod consumidores;
pub mod despachadores;
pub mod schema;
