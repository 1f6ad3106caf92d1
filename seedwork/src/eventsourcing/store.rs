//! The port a backend implements to keep event streams.

use async_trait::async_trait;

use super::{NewEvent, Snapshot, StoredEvent};
use crate::domain::ChangeTracker;
use crate::error::Result;

/// Keeps event streams, one per aggregate (`stream_type`, `stream_id`), and the snapshots of
/// their aggregates.
///
/// Implemented by `seedwork::memory::MemoryStore` and by the SQLite and PostgreSQL stores of
/// `seedwork-sqlx`, all held to the contract suite `seedwork::testing::contract::event_store`.
/// An implementation must:
/// - in [`append`](Self::append), write in the unit of work's transaction, and only if the
///   stream's version still is `expected` (0: the stream must not exist) — otherwise fail with
///   [`Error::Conflict`](crate::Error::Conflict) and write nothing — numbering the events
///   `expected + 1…` and giving each a global position, unique across streams;
/// - in [`read_all`](Self::read_all), never let a reader that follows positions skip an
///   event: an event it has not answered yet must, once answered, be at a position above
///   every position it has answered. A backend whose appends take turns gives positions in
///   commit order and answers every committed event; one whose appends run at once may hold
///   back committed events until every transaction that could precede them has ended;
/// - in [`load`](Self::load) and [`read_all`](Self::read_all), read committed events in order;
///   [`load_in`](Self::load_in) reads inside the unit of work (its own appends included) and,
///   where the backend can, locks the stream against concurrent appenders until the commit;
/// - keep one snapshot per stream, the latest saved.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends `events` to the stream if its version is `expected`; answers the stream's new
    /// version.
    async fn append(
        &self,
        uow: &mut dyn ChangeTracker,
        stream_type: &str,
        stream_id: &str,
        expected: u64,
        events: &[NewEvent],
    ) -> Result<u64>;

    /// The committed events of a stream with a version above `after`, in order.
    async fn load(
        &self,
        stream_type: &str,
        stream_id: &str,
        after: u64,
    ) -> Result<Vec<StoredEvent>>;

    /// Like [`load`](Self::load), inside the unit of work (see the trait).
    async fn load_in(
        &self,
        uow: &mut dyn ChangeTracker,
        stream_type: &str,
        stream_id: &str,
        after: u64,
    ) -> Result<Vec<StoredEvent>>;

    /// Up to `limit` committed events of every stream with a position above `after`, in
    /// position order (what projections follow). It may answer fewer than are committed, never
    /// one that a later call could precede (see the trait).
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>>;

    /// The highest position committed (0 when the store holds no event), whether or not
    /// [`read_all`](Self::read_all) answers it yet: a projection whose checkpoint is below it
    /// is behind.
    async fn last_position(&self) -> Result<u64>;

    /// Saves the snapshot of a stream, replacing an older one (a snapshot of a lower version
    /// than the stored one is ignored).
    async fn save_snapshot(
        &self,
        uow: &mut dyn ChangeTracker,
        stream_type: &str,
        stream_id: &str,
        snapshot: &Snapshot,
    ) -> Result<()>;

    /// The latest snapshot of a stream, if any.
    async fn load_snapshot(&self, stream_type: &str, stream_id: &str) -> Result<Option<Snapshot>>;

    /// Like [`load_snapshot`](Self::load_snapshot), inside the unit of work. A backend whose
    /// unit of work holds a pooled connection should read on it (the default reads outside:
    /// with every connection held by a unit of work, that would wait for a free one).
    async fn load_snapshot_in(
        &self,
        uow: &mut dyn ChangeTracker,
        stream_type: &str,
        stream_id: &str,
    ) -> Result<Option<Snapshot>> {
        let _ = uow;
        self.load_snapshot(stream_type, stream_id).await
    }
}
