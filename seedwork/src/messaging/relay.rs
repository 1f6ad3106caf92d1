use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use futures_util::stream::{self, StreamExt};

use super::{OutboxEntry, OutboxStore, Publisher};
use crate::error::Result;
use crate::supervision::HealthPart;

/// What one round of the relay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayRound {
    /// Entries published and marked.
    pub published: usize,
    /// Entries given back because their publish (or an earlier one with the same key) failed.
    pub released: usize,
}

/// What publishing one key's entries did.
#[derive(Default)]
struct ChainOutcome {
    published: Vec<u64>,
    released: Vec<u64>,
    error: Option<crate::error::Error>,
}

/// Moves committed messages from an [`OutboxStore`] to a [`Publisher`]: at least once, in order
/// per key.
///
/// Each round claims a batch, publishes it, marks what was published and releases the rest.
/// A key's entries are published one after the other in sequence order; different keys (and
/// entries without a key) are published concurrently, up to [`max_in_flight`](Self::max_in_flight)
/// at a time, so a networked broker's round trips overlap. When a publish fails, later entries
/// with the same key are not attempted in that round, so a key's order survives a broker outage. If the process dies between
/// publishing and marking, the lease expires and the entries are published again: consumers
/// deduplicate with their inbox. Several relays may share one store.
pub struct OutboxRelay {
    store: Arc<dyn OutboxStore>,
    publisher: Arc<dyn Publisher>,
    claimant: String,
    batch_size: usize,
    max_in_flight: usize,
    lease: Duration,
    poll_interval: Duration,
    retention: Duration,
    health: Option<HealthPart>,
}

impl OutboxRelay {
    /// A relay with defaults: batches of 100, 16 keys in flight, 30 s lease, 250 ms poll,
    /// published rows kept 1 h.
    pub fn new(store: Arc<dyn OutboxStore>, publisher: Arc<dyn Publisher>) -> Self {
        OutboxRelay {
            store,
            publisher,
            claimant: format!("relay-{}", Uuid::new_v4()),
            batch_size: 100,
            max_in_flight: 16,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(250),
            retention: Duration::from_secs(3600),
            health: None,
        }
    }

    /// Entries claimed per round (at least 1).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How many keys are published concurrently within a batch (at least 1; with 1, one
    /// message at a time, key after key).
    pub fn max_in_flight(mut self, max_in_flight: usize) -> Self {
        self.max_in_flight = max_in_flight.max(1);
        self
    }

    /// How long a claim holds before another relay may take the entries.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long to sleep when the outbox is empty and the store gives no commit signal.
    pub fn poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    /// How long published entries are kept before they are purged.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Reports each round's outcome to `part`: down while rounds fail (the store or the broker
    /// is unreachable, or a publish was refused), up again after a round that went through.
    pub fn report_to(mut self, part: HealthPart) -> Self {
        self.health = Some(part);
        self
    }

    /// The name this relay claims under (unique per relay by default).
    pub fn claimant(&self) -> &str {
        &self.claimant
    }

    /// Claims, publishes and marks one batch.
    pub async fn run_once(&self) -> Result<RelayRound> {
        let entries = self
            .store
            .claim(&self.claimant, self.batch_size, self.lease)
            .await?;
        // One chain per key, in sequence order; an entry without a key is a chain of its own.
        let mut chains: Vec<Vec<OutboxEntry>> = Vec::new();
        let mut chain_of_key: HashMap<String, usize> = HashMap::new();
        for entry in entries {
            match entry.message.key.clone() {
                Some(key) => match chain_of_key.get(&key) {
                    Some(&index) => chains[index].push(entry),
                    None => {
                        chain_of_key.insert(key, chains.len());
                        chains.push(vec![entry]);
                    }
                },
                None => chains.push(vec![entry]),
            }
        }
        let outcomes: Vec<ChainOutcome> = stream::iter(chains)
            .map(|chain| self.publish_chain(chain))
            .buffer_unordered(self.max_in_flight)
            .collect()
            .await;
        let mut published = Vec::new();
        let mut released = Vec::new();
        let mut first_error = None;
        for outcome in outcomes {
            published.extend(outcome.published);
            released.extend(outcome.released);
            if let Some(error) = outcome.error {
                first_error.get_or_insert(error);
            }
        }
        if !published.is_empty() {
            self.store
                .mark_published(&self.claimant, &published)
                .await?;
        }
        if !released.is_empty() {
            self.store.release(&self.claimant, &released).await?;
        }
        if published.is_empty() {
            if let Some(error) = first_error {
                return Err(error);
            }
        }
        Ok(RelayRound {
            published: published.len(),
            released: released.len(),
        })
    }

    /// Publishes one key's entries in order, stopping at the first failure.
    async fn publish_chain(&self, chain: Vec<OutboxEntry>) -> ChainOutcome {
        let mut outcome = ChainOutcome::default();
        let mut entries = chain.into_iter();
        for entry in entries.by_ref() {
            match self.publisher.publish(&entry.message).await {
                Ok(()) => outcome.published.push(entry.sequence),
                Err(error) => {
                    tracing::warn!(
                        sequence = entry.sequence,
                        topic = %entry.message.topic,
                        %error,
                        "outbox publish failed; the entry stays for a later round"
                    );
                    outcome.released.push(entry.sequence);
                    outcome.error = Some(error);
                    break;
                }
            }
        }
        outcome.released.extend(entries.map(|entry| entry.sequence));
        outcome
    }

    /// Runs rounds until `shutdown` completes. Store or broker failures are logged and retried
    /// after the poll interval; the relay itself never gives up.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let signal = self.store.commit_signal();
        tokio::pin!(shutdown);
        let mut rounds_since_purge = 0u32;
        loop {
            let outcome = self.run_once().await;
            let idle = match &outcome {
                Ok(round) => {
                    if let Some(part) = &self.health {
                        if round.released == 0 {
                            part.up();
                        }
                    }
                    round.published == 0 && round.released == 0
                }
                Err(error) => {
                    tracing::warn!(%error, "outbox relay round failed");
                    if let Some(part) = &self.health {
                        part.down(format!("relay rounds fail: {error}"));
                    }
                    true
                }
            };
            rounds_since_purge += 1;
            if rounds_since_purge >= 100 {
                rounds_since_purge = 0;
                if let Err(error) = self.store.purge_published(self.retention).await {
                    tracing::warn!(%error, "outbox purge failed");
                }
            }
            if !idle && outcome.as_ref().map(|r| r.released == 0).unwrap_or(false) {
                continue;
            }
            let wait = async {
                match (&signal, outcome.is_ok()) {
                    (Some(signal), true) => {
                        let _ = tokio::time::timeout(self.poll_interval, signal.notified()).await;
                    }
                    _ => tokio::time::sleep(self.poll_interval).await,
                }
            };
            tokio::select! {
                _ = &mut shutdown => return,
                _ = wait => {}
            }
        }
    }
}
