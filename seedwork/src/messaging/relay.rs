use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::{OutboxStore, Publisher};
use crate::error::Result;

/// What one round of the relay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayRound {
    /// Entries published and marked.
    pub published: usize,
    /// Entries given back because their publish (or an earlier one with the same key) failed.
    pub released: usize,
}

/// Moves committed messages from an [`OutboxStore`] to a [`Publisher`]: at least once, in order
/// per key.
///
/// Each round claims a batch, publishes it in sequence order, marks what was published and
/// releases the rest. When a publish fails, later entries with the same key are not attempted
/// in that round, so a key's order survives a broker outage. If the process dies between
/// publishing and marking, the lease expires and the entries are published again: consumers
/// deduplicate with their inbox. Several relays may share one store.
pub struct OutboxRelay {
    store: Arc<dyn OutboxStore>,
    publisher: Arc<dyn Publisher>,
    claimant: String,
    batch_size: usize,
    lease: Duration,
    poll_interval: Duration,
    retention: Duration,
}

impl OutboxRelay {
    /// A relay with defaults: batches of 100, 30 s lease, 250 ms poll, published rows kept 1 h.
    pub fn new(store: Arc<dyn OutboxStore>, publisher: Arc<dyn Publisher>) -> Self {
        OutboxRelay {
            store,
            publisher,
            claimant: format!("relay-{}", Uuid::new_v4()),
            batch_size: 100,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(250),
            retention: Duration::from_secs(3600),
        }
    }

    /// Entries claimed per round (at least 1).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
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
        let mut published = Vec::with_capacity(entries.len());
        let mut released = Vec::new();
        let mut blocked_keys: HashSet<Option<String>> = HashSet::new();
        let mut first_error = None;
        for entry in entries {
            let key = entry.message.key.clone();
            if key.is_some() && blocked_keys.contains(&key) {
                released.push(entry.sequence);
                continue;
            }
            match self.publisher.publish(&entry.message).await {
                Ok(()) => published.push(entry.sequence),
                Err(error) => {
                    tracing::warn!(
                        sequence = entry.sequence,
                        topic = %entry.message.topic,
                        %error,
                        "outbox publish failed; the entry stays for a later round"
                    );
                    blocked_keys.insert(key);
                    released.push(entry.sequence);
                    first_error.get_or_insert(error);
                }
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

    /// Runs rounds until `shutdown` completes. Store or broker failures are logged and retried
    /// after the poll interval; the relay itself never gives up.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let signal = self.store.commit_signal();
        tokio::pin!(shutdown);
        let mut rounds_since_purge = 0u32;
        loop {
            let outcome = self.run_once().await;
            let idle = match &outcome {
                Ok(round) => round.published == 0 && round.released == 0,
                Err(error) => {
                    tracing::warn!(%error, "outbox relay round failed");
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
