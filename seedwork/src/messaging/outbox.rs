use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::Message;
use crate::error::Result;

/// A committed message waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// The store's position for it, increasing in commit order.
    pub sequence: u64,
    /// The message to publish.
    pub message: Message,
}

/// The relay's side of the transactional outbox: claim committed messages, mark them published.
///
/// Messages are written by `Transaction::append_outbox` (the unit of work's backend) inside the
/// unit of work; this trait reads them back. Implementations must ensure that:
/// - a claim returns unpublished entries in sequence order and never an entry currently leased
///   by another claimant;
/// - a claim never returns an entry while an earlier unpublished entry with the same key is
///   leased by someone else or left out of the claim (order per key);
/// - a lease expires after `lease`, so entries claimed by a relay that died are claimed again;
/// - `mark_published` and `release` only touch entries the claimant holds.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Leases up to `limit` entries to `claimant` for `lease`.
    async fn claim(
        &self,
        claimant: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>>;

    /// Marks entries as published.
    async fn mark_published(&self, claimant: &str, sequences: &[u64]) -> Result<()>;

    /// Gives entries back unpublished, to be claimed again.
    async fn release(&self, claimant: &str, sequences: &[u64]) -> Result<()>;

    /// Deletes published entries older than `older_than`; returns how many.
    async fn purge_published(&self, older_than: Duration) -> Result<u64>;

    /// How many entries are not yet published.
    async fn pending(&self) -> Result<u64>;

    /// A signal raised when new entries are committed, so a relay can wake at once instead of
    /// waiting for its next poll. `None` when the store cannot tell.
    fn commit_signal(&self) -> Option<Arc<Notify>> {
        None
    }
}
