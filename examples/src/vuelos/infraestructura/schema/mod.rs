//! The integration schemas of `vuelos`, one module per version (`schema/v1`, later `v2`…).

pub mod v1;
pub mod v2;
