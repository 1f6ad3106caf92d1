//! [`SagaDeadlines`]: takes the deadlines of steps that got no reply in time.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::engine::Shared;
use super::SagaStore;
use crate::application::Bus;
use crate::error::Result;
use crate::messaging::now_millis;
use crate::supervision::HealthPart;

/// Takes passed deadlines: every [`poll_interval`](Self::poll_interval) it asks the store for
/// the instances whose deadline has passed and, for each in a unit of work of its own, sends
/// the step down its failure path (its compensation and the earlier steps').
///
/// Deadlines live in the store with the instances, so they survive a restart: the first round
/// after it takes every deadline that passed while the process was down. Several processes may
/// run it on one store: an instance is taken in a transaction that checks its deadline again
/// (and, on PostgreSQL, locks it), so each deadline is taken once.
pub struct SagaDeadlines {
    bus: Bus,
    store: Arc<dyn SagaStore>,
    engines: HashMap<String, Shared>,
    poll: Duration,
    batch: usize,
    health: Option<HealthPart>,
}

impl std::fmt::Debug for SagaDeadlines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaDeadlines")
            .field("sagas", &self.engines.keys().collect::<Vec<_>>())
            .field("poll", &self.poll)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl SagaDeadlines {
    pub(crate) fn new(
        bus: Bus,
        store: Arc<dyn SagaStore>,
        engines: HashMap<String, Shared>,
    ) -> Self {
        SagaDeadlines {
            bus,
            store,
            engines,
            poll: Duration::from_millis(500),
            batch: 100,
            health: None,
        }
    }

    /// Reports to `part`: up after each round that could read the store, down (with the
    /// error) after one that could not.
    pub fn report_to(mut self, part: HealthPart) -> Self {
        self.health = Some(part);
        self
    }

    /// How often the store is asked for passed deadlines (default 500 ms): a deadline is taken
    /// at most this late.
    pub fn poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(1));
        self
    }

    /// Takes every deadline passed by now; answers how many instances took their failure path.
    /// An instance whose deadline cannot be taken (its state no longer decodes, the store
    /// fails) is logged and left for the next round; the others are taken all the same.
    pub async fn run_once(&self) -> Result<usize> {
        self.run_once_at(now_millis()).await
    }

    /// Like [`run_once`](Self::run_once), as if the clock read `now` (milliseconds since the
    /// Unix epoch): what tests use to pass a deadline without waiting for it.
    pub async fn run_once_at(&self, now: i64) -> Result<usize> {
        let mut taken = 0;
        loop {
            let due = self.store.due(now, self.batch).await?;
            let full = due.len() == self.batch;
            let mut progressed = false;
            for key in due {
                let Some(engine) = self.engines.get(&key.saga) else {
                    tracing::warn!(saga = %key.saga, correlation_id = %key.correlation_id, "a deadline of an unknown saga is left alone");
                    continue;
                };
                match self.take(engine, &key.correlation_id, now).await {
                    Ok(true) => {
                        taken += 1;
                        progressed = true;
                    }
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(%error, saga = %key.saga, correlation_id = %key.correlation_id, "taking a saga deadline failed; it is tried again next round");
                    }
                }
            }
            if !full || !progressed {
                return Ok(taken);
            }
        }
    }

    async fn take(&self, engine: &Shared, correlation_id: &str, now: i64) -> Result<bool> {
        let mut uow = self.bus.unit_of_work().await?;
        // What the failure path sends belongs to the instance's conversation.
        uow.set_correlation_id(correlation_id);
        match engine.on_deadline(correlation_id, now, &mut uow).await {
            Ok(true) => {
                uow.commit().await?;
                tracing::info!(saga = %engine.name(), %correlation_id, "a saga step timed out");
                Ok(true)
            }
            Ok(false) => {
                uow.rollback().await?;
                Ok(false)
            }
            Err(error) => Err(uow.rollback_after(error, "a failed deadline").await),
        }
    }

    /// Takes deadlines every poll interval until `shutdown` completes. A failed round (the
    /// store is unreachable) is logged and the next one tried.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut every = tokio::time::interval(self.poll);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reported_up: Option<bool> = None;
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = every.tick() => {}
            }
            let up = match self.run_once().await {
                Ok(_) => true,
                Err(error) => {
                    tracing::warn!(%error, "looking for passed saga deadlines failed");
                    if let Some(part) = &self.health {
                        part.down(format!("cannot read the saga deadlines: {error}"));
                    }
                    false
                }
            };
            // Reported up on the first good round and after a bad one only, so the register's
            // `since` says when it came up.
            if up && reported_up != Some(true) {
                if let Some(part) = &self.health {
                    part.up();
                }
            }
            reported_up = Some(up);
        }
    }
}
