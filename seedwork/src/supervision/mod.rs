//! Keeping a process's long-running parts alive, and telling whether they are.
//!
//! A service built on seedwork runs a few loops beside its HTTP server: consumers (the bus's
//! `consume_with`), an outbox relay, forwarders. Any of them can fail — a consumer whose broker connection broke for good, a task
//! that panicked — and a loop that logs an error and exits leaves the process up but deaf.
//!
//! - [`supervise`] runs a part, restarts it with a growing, bounded backoff whenever it fails
//!   or panics, and stops only when its shutdown signal fires.
//! - [`Health`] is the process's register of parts: each part reports itself up or down
//!   through its [`HealthPart`], and a `/health` endpoint answers from
//!   [`Health::report`] (503 when any part is down).
//!
//! This module depends on nothing but [`Error`](crate::error::Error), so every layer above it
//! can report to a [`HealthPart`].

mod health;
mod supervise;

pub use health::{Health, HealthPart, HealthReport, PartStatus};
pub use supervise::{supervise, RestartPolicy};
