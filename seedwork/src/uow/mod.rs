//! The unit of work: one business transaction, from the first change to the commit that
//! dispatches its domain events and writes its integration messages to the outbox.
//!
//! A backend (the in-memory store, `seedwork-sqlx`) implements [`TransactionalStore`] and
//! [`Transaction`]; the commit protocol itself lives in [`UnitOfWork`], the same for every
//! backend. Which handlers see the domain events at commit is asked through the
//! [`EventDispatch`] port, which the application layer implements.

mod dispatch;
mod transaction;
mod unit_of_work;

pub use dispatch::{EventDispatch, NoDispatch};
pub use transaction::{Transaction, TransactionalStore};
pub(crate) use unit_of_work::Trace;
pub use unit_of_work::{CommitReport, PendingEvent, Savepoint, UnitOfWork, MAX_EVENTS_PER_COMMIT};
