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

/// A publish of one claimed entry that failed for a reason of its own (not an outage), as the
/// relay reports it to [`OutboxStore::record_failures`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishFailure {
    /// The entry that failed.
    pub sequence: u64,
    /// What the publisher reported, kept as the entry's last error for operators.
    pub error: String,
}

/// An entry the relay gave up on: it failed [`OutboxRelay::max_attempts`] times for a reason
/// of its own (its payload does not fit the topic's schema, the broker refuses it…).
///
/// A parked entry stays in the outbox, is no longer claimed, and holds back the later entries
/// of its key (their order is kept), until an operator [re-drives](OutboxStore::redrive) or
/// [discards](OutboxStore::discard) it.
///
/// [`OutboxRelay::max_attempts`]: super::OutboxRelay::max_attempts
#[derive(Debug, Clone, PartialEq)]
pub struct ParkedEntry {
    /// Its position in the outbox.
    pub sequence: u64,
    /// The topic it was meant for.
    pub topic: String,
    /// Its ordering key: later entries with this key wait behind it.
    pub key: Option<String>,
    /// The message that could not be published; `None` when what the store holds no longer
    /// reads back as a message at all (a corrupt or incompatible stored envelope — then
    /// [`last_error`](Self::last_error) says why, and only [`discard`](OutboxStore::discard)
    /// helps).
    pub message: Option<Message>,
    /// How many publishes failed (outages not counted).
    pub attempts: u32,
    /// What the last failed publish reported.
    pub last_error: String,
    /// When it was parked, in milliseconds since the Unix epoch (like
    /// [`Envelope::time`](super::Envelope::time)).
    pub parked_at: i64,
}

/// How far the relay is behind, for a health check or a metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxLag {
    /// How long the oldest unpublished entry that is not parked has waited since its commit;
    /// `None` when there is none. Entries waiting behind a parked entry of their key count:
    /// they are late too.
    pub oldest_pending_age: Option<Duration>,
    /// Unpublished entries that are not parked (the relay still works on them).
    pub pending: u64,
    /// Parked entries, waiting for an operator.
    pub parked: u64,
}

/// The relay's side of the transactional outbox: claim committed messages, mark them published,
/// count the failures of those that cannot be published and park them for an operator.
///
/// Messages are written by `Transaction::append_outbox` (the unit of work's backend) inside the
/// unit of work; this trait reads them back. Implementations must ensure that:
/// - a claim returns unpublished, unparked entries in sequence order and never an entry
///   currently leased by another claimant;
/// - a claim never returns an entry while an earlier unpublished entry with the same key is
///   leased by someone else, left out of the claim, or parked (order per key);
/// - a claim skips parked entries and the entries they hold back without counting them against
///   `limit`, however many there are, so a few poison messages never stall the other keys;
/// - a lease expires after `lease`, so entries claimed by a relay that died are claimed again;
/// - `mark_published`, `release`, `renew` and `record_failures` only touch entries the claimant
///   holds.
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

    /// Gives entries back unpublished, to be claimed again, without counting a failure (the
    /// broker was unreachable, or an earlier entry of the same key failed).
    async fn release(&self, claimant: &str, sequences: &[u64]) -> Result<()>;

    /// Extends the claimant's lease on entries it still holds to `lease` from now, so that a
    /// publish slower than the lease is not claimed and published a second time by another
    /// relay. Returns how many entries were renewed: fewer than asked means some lease was lost
    /// (it expired and another relay took the entry).
    async fn renew(&self, claimant: &str, sequences: &[u64], lease: Duration) -> Result<u64>;

    /// Records failed publishes of entries the claimant holds and gives them back: each
    /// entry's attempt count goes up by one and its error is kept; an entry whose count reaches
    /// `max_attempts` is parked. Returns the sequences parked by this call.
    ///
    /// Only failures of the entry itself belong here: an outage ([`Error::is_transient`]) is
    /// [released](Self::release) instead, so a broker that is down never parks anything.
    ///
    /// [`Error::is_transient`]: crate::Error::is_transient
    async fn record_failures(
        &self,
        claimant: &str,
        failures: &[PublishFailure],
        max_attempts: u32,
    ) -> Result<Vec<u64>>;

    /// Up to `limit` parked entries after sequence `after` (from the start with `None`), in
    /// sequence order, with their attempt count and last error: what an operator reviews before
    /// re-driving or discarding them.
    async fn parked(&self, after: Option<u64>, limit: usize) -> Result<Vec<ParkedEntry>>;

    /// Puts a parked entry back to pending with its attempt count reset, once its cause is
    /// fixed (a schema registered, a topic created): the relay claims it again, and the later
    /// entries of its key follow it. [`Error::NotFound`](crate::Error::NotFound) when no
    /// parked entry has this sequence.
    async fn redrive(&self, sequence: u64) -> Result<()>;

    /// Deletes a parked entry without publishing it, releasing the later entries of its key.
    /// Its message is lost to the consumers: for a message that must never go out.
    /// [`Error::NotFound`](crate::Error::NotFound) when no parked entry has this sequence.
    async fn discard(&self, sequence: u64) -> Result<()>;

    /// Deletes published entries older than `older_than`; returns how many.
    async fn purge_published(&self, older_than: Duration) -> Result<u64>;

    /// How many entries are not yet published, parked ones included (see [`lag`](Self::lag)
    /// for the two apart).
    async fn pending(&self) -> Result<u64>;

    /// How far the relay is behind: the age of the oldest pending entry, and how many are
    /// pending and parked. A growing age means the relay is stopped or the broker unreachable;
    /// a parked count above zero needs an operator.
    async fn lag(&self) -> Result<OutboxLag>;

    /// A signal raised when new entries are committed, so a relay can wake at once instead of
    /// waiting for its next poll. `None` when the store cannot tell.
    fn commit_signal(&self) -> Option<Arc<Notify>> {
        None
    }
}
