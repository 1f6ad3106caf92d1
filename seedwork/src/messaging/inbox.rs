use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;

/// The maintenance side of the consumers' inbox: forgetting old entries.
///
/// Consumers record each processed message id in the inbox, in the transaction of the
/// handler's effects (`Transaction::record_inbox`), so a redelivered message has its effect
/// once. Kept forever, the inbox grows with every message ever handled; [`InboxRetention`]
/// purges it periodically through this trait.
#[async_trait]
pub trait InboxStore: Send + Sync {
    /// Deletes inbox entries recorded more than `older_than` ago; returns how many.
    ///
    /// A message whose entry is gone is no longer recognised as a duplicate: if it is
    /// delivered again it is handled again.
    async fn purge_inbox(&self, older_than: Duration) -> Result<u64>;
}

/// Purges the inbox periodically, keeping entries for a retention window.
///
/// The window is the **deduplication window**: a duplicate of a message that arrives within it
/// of the first delivery is recognised and skipped; a duplicate that arrives after it is
/// handled again, as a new message. Choose it longer than the longest redelivery you expect —
/// a relay's lease and retries, a broker's redelivery backoff, an outage of a consumer — so
/// that only messages nobody will send again are forgotten. The default is 7 days.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use seedwork::messaging::{InboxRetention, InboxStore};
///
/// fn start(store: Arc<dyn InboxStore>) {
///     let retention = InboxRetention::new(store).window(Duration::from_secs(3 * 24 * 3600));
///     tokio::spawn(retention.run(std::future::pending()));
/// }
/// ```
pub struct InboxRetention {
    store: Arc<dyn InboxStore>,
    window: Duration,
    interval: Duration,
}

impl InboxRetention {
    /// The default deduplication window: 7 days.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

    /// Retention with the default window, purging once an hour.
    pub fn new(store: Arc<dyn InboxStore>) -> Self {
        InboxRetention {
            store,
            window: Self::DEFAULT_WINDOW,
            interval: Duration::from_secs(3600),
        }
    }

    /// How long an entry is kept: the deduplication window (see the type's docs).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// How often to purge (an hour by default; at least 1 ms). An entry lives at most
    /// `window + interval`.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The deduplication window.
    pub fn deduplication_window(&self) -> Duration {
        self.window
    }

    /// Purges once; returns how many entries were forgotten.
    pub async fn run_once(&self) -> Result<u64> {
        self.store.purge_inbox(self.window).await
    }

    /// Purges at once, then every interval, until `shutdown` completes. A failed purge is
    /// logged and tried again at the next interval.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = ticks.tick() => {}
            }
            match self.run_once().await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "inbox entries past the window purged"),
                Err(error) => tracing::warn!(%error, "inbox purge failed"),
            }
        }
    }
}
