//! Event sourcing: aggregates whose state is the fold of their events, kept in an
//! [`EventStore`] — one stream per aggregate, a global position across streams, appends checked
//! against the version the writer loaded, snapshots every N events.
//!
//! It is built on the same unit of work as the rest: an append is written in the unit of work's
//! transaction, so the events, the messages they are mapped to (outbox) and, in a consumer, the
//! inbox entry commit together or not at all; and the events appended are the aggregate's
//! domain events, dispatched to the in-process handlers at commit exactly as a state-stored
//! aggregate's are.
//!
//! - [`EventSourced`]: what an aggregate adds — its event type and `apply`.
//! - [`EventStore`]: the port a backend implements (`seedwork::memory::MemoryStore`, the SQLite
//!   and PostgreSQL stores of `seedwork-sqlx`), held to the contract suite
//!   `seedwork::testing::contract::event_store`.
//! - [`EventSourcedRepository`]: a [`Repository`](crate::domain::Repository) for any
//!   event-sourced aggregate on any event store.
//! - [`Projection`] and [`ProjectionRunner`]: read models built from the store by global
//!   position, each event applied once (the read model's write and the [`Checkpoint`] commit
//!   together), caught up, followed, rebuilt.
//! - [`upcast`]: old versions of a stored event brought up to today's before an aggregate or a
//!   projection sees them ([`EventUpcaster`], [`event_upcaster!`](crate::event_upcaster)).

mod aggregate;
mod event;
mod projection;
mod repository;
mod store;
pub mod upcast;

pub use aggregate::EventSourced;
pub use event::{NewEvent, Snapshot, StoredEvent};
pub use projection::{Checkpoint, Projection, ProjectionRunner};
pub use repository::EventSourcedRepository;
pub use store::EventStore;
pub use upcast::EventUpcaster;
