//! The port a backend implements to keep saga instances.

use async_trait::async_trait;

use super::{SagaKey, SagaRecord};
use crate::domain::ChangeTracker;
use crate::error::Result;

/// Keeps saga instances: one [`SagaRecord`] per saga name and correlation id, written in the
/// unit of work's transaction so that a step's state change, the commands it sends (the
/// outbox) and the message it consumed (the inbox) commit together or not at all.
///
/// Implemented by `seedwork::memory::MemoryStore` and by the SQLite and PostgreSQL stores of
/// `seedwork-sqlx`; all are held to the contract suite `seedwork::testing::contract::saga`
/// (feature `testing`). An implementation must:
/// - in [`load`](Self::load), read inside the unit of work, seeing its own writes, and where the
///   backend can, lock the row until the commit (PostgreSQL `FOR UPDATE`; SQLite and the
///   memory store already serialise writers), so that two messages for one instance are handled
///   one after the other;
/// - in [`save`](Self::save), insert a record of version 0 (a second insert of the same key is
///   an [`Error::Conflict`](crate::Error::Conflict)) and replace version `v` only if the stored
///   version still is `v` (else [`Error::Conflict`](crate::Error::Conflict)), then set the
///   record's version to `v + 1`;
/// - in [`due`](Self::due), answer the committed instances whose deadline is at or before
///   `now`, earliest first.
#[async_trait]
pub trait SagaStore: Send + Sync {
    /// The instance as the unit of work sees it, locked for the rest of it where the backend
    /// can.
    async fn load(
        &self,
        uow: &mut dyn ChangeTracker,
        saga: &str,
        correlation_id: &str,
    ) -> Result<Option<SagaRecord>>;

    /// Stores the instance in the unit of work, checking its version (see the trait).
    async fn save(&self, uow: &mut dyn ChangeTracker, record: &mut SagaRecord) -> Result<()>;

    /// The committed instance, if there is one.
    async fn get(&self, saga: &str, correlation_id: &str) -> Result<Option<SagaRecord>>;

    /// Every committed instance following `correlation_id`, of any saga, by saga name.
    async fn find(&self, correlation_id: &str) -> Result<Vec<SagaRecord>>;

    /// Up to `limit` committed instances whose deadline is at or before `now` (milliseconds
    /// since the Unix epoch), earliest deadline first.
    async fn due(&self, now: i64, limit: usize) -> Result<Vec<SagaKey>>;
}
