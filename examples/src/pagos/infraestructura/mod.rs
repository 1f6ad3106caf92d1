//! How `pagos` meets the broker: its messages (`schema`) and its consumers.

pub mod consumidores;
pub mod schema;
