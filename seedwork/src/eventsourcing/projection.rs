//! Projections: read models built from the event store by global position, each event applied
//! once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{EventStore, StoredEvent};
use crate::domain::{AggregateRoot, AggregateState, Entity, Repository};
use crate::error::Result;
use crate::uow::UnitOfWork;

/// Builds a read model from events (the tutorial's `Proyeccion`): [`ProjectionRunner`] hands it
/// every event of the store in position order, each in a unit of work that also moves the
/// projection's [`Checkpoint`] — the read model's write and the checkpoint commit together, so
/// each event is applied exactly once, across crashes and restarts.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// The projection's name: the key of its checkpoint.
    fn name(&self) -> &str;

    /// Applies one event to the read model, writing through `uow` (its repositories). Events
    /// of streams the projection does not follow are passed too: ignore them.
    async fn apply(&self, event: &StoredEvent, uow: &mut UnitOfWork) -> Result<()>;

    /// Empties the read model, for a rebuild from the first event.
    async fn reset(&self, uow: &mut UnitOfWork) -> Result<()>;
}

/// How far a projection has read: the position of the last event it applied. Stored through any
/// [`Repository`] (the memory or JSON repositories), keyed by the projection's name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The projection's name.
    pub id: String,
    /// The position of the last event applied (0: none).
    pub position: u64,
    #[serde(skip)]
    state: AggregateState,
}

impl Entity for Checkpoint {
    type Id = String;
    fn id(&self) -> &String {
        &self.id
    }
}

impl AggregateRoot for Checkpoint {
    const TYPE: &'static str = "seedwork_projection_checkpoint";
    fn state(&self) -> &AggregateState {
        &self.state
    }
    fn state_mut(&mut self) -> &mut AggregateState {
        &mut self.state
    }
}

/// Runs a [`Projection`]: catches up from its checkpoint, then follows the store as events are
/// appended.
pub struct ProjectionRunner {
    bus: crate::application::Bus,
    events: Arc<dyn EventStore>,
    checkpoints: Arc<dyn Repository<Checkpoint>>,
    projection: Arc<dyn Projection>,
    batch: usize,
    poll: Duration,
}

impl std::fmt::Debug for ProjectionRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionRunner")
            .field("projection", &self.projection.name())
            .field("batch", &self.batch)
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

impl ProjectionRunner {
    /// Runs `projection` on the events of `events`, its units of work opened on `bus` (whose
    /// store holds the read model and the checkpoints kept by `checkpoints`).
    pub fn new(
        bus: crate::application::Bus,
        events: Arc<dyn EventStore>,
        checkpoints: Arc<dyn Repository<Checkpoint>>,
        projection: Arc<dyn Projection>,
    ) -> Self {
        ProjectionRunner {
            bus,
            events,
            checkpoints,
            projection,
            batch: 256,
            poll: Duration::from_millis(200),
        }
    }

    /// At most how many events one unit of work applies (default 256).
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// How often the store is asked for new events once caught up (default 200 ms).
    pub fn poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(1));
        self
    }

    /// The projection's checkpoint as committed (0 before its first event).
    pub async fn position(&self) -> Result<u64> {
        let name = self.projection.name().to_string();
        Ok(self
            .checkpoints
            .get(&name)
            .await?
            .map_or(0, |checkpoint| checkpoint.position))
    }

    /// Applies the next batch of events after the checkpoint, in one unit of work with the
    /// checkpoint's move; answers how many. Nothing commits if the projection fails, or if
    /// another runner of the same projection moved the checkpoint meanwhile (a conflict).
    pub async fn run_once(&self) -> Result<usize> {
        let name = self.projection.name().to_string();
        let mut uow = self.bus.unit_of_work().await?;
        let outcome = async {
            let mut checkpoint = self.checkpoints.get_for_update(&mut uow, &name).await?;
            let after = checkpoint.as_ref().map_or(0, |c| c.position);
            let events = self.events.read_all(after, self.batch).await?;
            let Some(last) = events.last().map(|e| e.position) else {
                return Ok(0);
            };
            for event in &events {
                self.projection.apply(event, &mut uow).await?;
            }
            match checkpoint.as_mut() {
                Some(checkpoint) => {
                    checkpoint.position = last;
                    self.checkpoints.update(&mut uow, checkpoint).await?;
                }
                None => {
                    let mut checkpoint = Checkpoint {
                        id: name.clone(),
                        position: last,
                        state: AggregateState::new(),
                    };
                    self.checkpoints.add(&mut uow, &mut checkpoint).await?;
                }
            }
            Ok(events.len())
        }
        .await;
        match outcome {
            Ok(0) => {
                uow.rollback().await?;
                Ok(0)
            }
            Ok(applied) => {
                uow.commit().await?;
                Ok(applied)
            }
            Err(error) => {
                if let Err(rollback_error) = uow.rollback().await {
                    tracing::warn!(%rollback_error, "rollback after a failed projection batch failed");
                }
                Err(error)
            }
        }
    }

    /// Applies batches until the projection has caught up with the store; answers how many
    /// events it applied.
    pub async fn catch_up(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let applied = self.run_once().await?;
            if applied == 0 {
                return Ok(total);
            }
            total += applied;
        }
    }

    /// Empties the read model and moves the checkpoint back to the start, in one unit of work,
    /// then replays every event; answers how many it applied.
    pub async fn rebuild(&self) -> Result<usize> {
        let name = self.projection.name().to_string();
        let mut uow = self.bus.unit_of_work().await?;
        let reset = async {
            self.projection.reset(&mut uow).await?;
            if let Some(mut checkpoint) = self.checkpoints.get_for_update(&mut uow, &name).await? {
                checkpoint.position = 0;
                self.checkpoints.update(&mut uow, &mut checkpoint).await?;
            }
            Ok::<(), crate::Error>(())
        }
        .await;
        match reset {
            Ok(()) => {
                uow.commit().await?;
            }
            Err(error) => {
                if let Err(rollback_error) = uow.rollback().await {
                    tracing::warn!(%rollback_error, "rollback after a failed reset failed");
                }
                return Err(error);
            }
        }
        self.catch_up().await
    }

    /// Catches up, then follows new events every poll interval until `shutdown`. A failed
    /// batch (the store is unreachable, the projection fails) is logged and tried again after
    /// the interval; nothing of it committed.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let wait = match self.catch_up().await {
                Ok(_) => self.poll,
                Err(error) => {
                    tracing::warn!(%error, projection = %self.projection.name(), "projection batch failed; it is tried again");
                    self.poll
                }
            };
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
