//! Fresh backends for the tests.
#![allow(dead_code)]

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
