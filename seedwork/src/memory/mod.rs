//! The embedded default (feature `memory`): an in-memory broker and an in-memory transactional
//! store with outbox and inbox.
//!
//! They are complete implementations of the [`messaging`](crate::messaging) and
//! [`uow`](crate::uow) ports, held to the same contract suites as the SQL and Pulsar adapters,
//! so an application and its tests run with no external service.

mod broker;
mod event_store;
mod repository;
mod saga_store;
mod store;

pub use broker::{MemoryBroker, MemoryConsumer};
pub use repository::MemoryRepository;
pub use store::{MemoryStore, MemoryTransaction, OutboxSnapshot};
