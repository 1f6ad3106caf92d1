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
use crate::supervision::HealthPart;
use crate::uow::UnitOfWork;

/// Builds a read model from events (the tutorial's `Proyeccion`): [`ProjectionRunner`] hands it
/// every event of the store in position order (upcast to the newest version registered, see
/// [`upcast`](super::upcast)), each in a unit of work that also moves the
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

/// What one batch of a [`ProjectionRunner`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Batch {
    /// No committed event after the checkpoint.
    CaughtUp,
    /// Committed events after the checkpoint, none readable yet (see
    /// [`EventStore::read_all`]).
    HeldBack,
    /// `count` events applied, the checkpoint moved to `last`.
    Applied { count: usize, last: u64 },
}

impl Batch {
    /// How many events it applied.
    fn count(self) -> usize {
        match self {
            Batch::Applied { count, .. } => count,
            Batch::CaughtUp | Batch::HeldBack => 0,
        }
    }
}

/// How long [`ProjectionRunner::catch_up`] waits before it reads again events that the store
/// holds back (at most: the poll interval when shorter).
const HELD_BACK_WAIT: Duration = Duration::from_millis(5);

/// Runs a [`Projection`]: catches up from its checkpoint, then follows the store as events are
/// appended.
pub struct ProjectionRunner {
    bus: crate::application::Bus,
    events: Arc<dyn EventStore>,
    checkpoints: Arc<dyn Repository<Checkpoint>>,
    projection: Arc<dyn Projection>,
    batch: usize,
    poll: Duration,
    health: Option<HealthPart>,
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
            health: None,
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

    /// Reports to `part` while [`run`](Self::run)ning: down (with the error) after a batch that
    /// failed, up again after one that succeeds.
    pub fn report_to(mut self, part: HealthPart) -> Self {
        self.health = Some(part);
        self
    }

    /// The projection's name.
    pub fn name(&self) -> &str {
        self.projection.name()
    }

    /// Whether the store holds committed events after the checkpoint: the read model is
    /// behind (even while the store holds them back, see
    /// [`EventStore::read_all`]).
    pub async fn behind(&self) -> Result<bool> {
        let position = self.position().await?;
        Ok(self.events.last_position().await? > position)
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
        Ok(self.apply_batch().await?.count())
    }

    /// [`run_once`](Self::run_once), answering what it found.
    async fn apply_batch(&self) -> Result<Batch> {
        let name = self.projection.name().to_string();
        // A look first, outside any transaction: a caught-up projection polls with two reads,
        // without taking a write lock (SQLite's one writer) only to find nothing to do.
        if !self.behind().await? {
            return Ok(Batch::CaughtUp);
        }
        let mut uow = self.bus.unit_of_work().await?;
        let outcome = async {
            let mut checkpoint = self.checkpoints.get_for_update(&mut uow, &name).await?;
            let after = checkpoint.as_ref().map_or(0, |c| c.position);
            let events = self.events.read_all(after, self.batch).await?;
            let Some(last) = events.last().map(|e| e.position) else {
                return Ok(Batch::HeldBack);
            };
            for event in &events {
                // Old versions are brought up to the newest one registered first.
                self.projection
                    .apply(&*event.upcast(None)?, &mut uow)
                    .await?;
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
            Ok(Batch::Applied {
                count: events.len(),
                last,
            })
        }
        .await;
        match outcome {
            Ok(applied @ Batch::Applied { .. }) => {
                uow.commit().await?;
                Ok(applied)
            }
            Ok(nothing) => {
                uow.rollback().await?;
                Ok(nothing)
            }
            Err(error) => Err(uow.rollback_after(error, "a failed projection batch").await),
        }
    }

    /// Applies batches until the projection has caught up with the store (every event
    /// committed when it ends is applied); answers how many events it applied.
    ///
    /// Where the store holds committed events back until older transactions end (see
    /// [`EventStore::read_all`]), it waits for them: as long as the longest transaction in
    /// progress lasts.
    ///
    /// A batch that another runner of the same projection applied first (a
    /// [`Conflict`](crate::Error::Conflict), and the checkpoint moved meanwhile) is not an
    /// error here: that runner made the progress, and this one reads on from where it got to.
    /// A conflict without progress (the projection's own write conflicts) is the error.
    pub async fn catch_up(&self) -> Result<usize> {
        let mut total = 0;
        let mut seen = self.position().await?;
        loop {
            match self.next_batch(&mut seen).await? {
                Batch::Applied { count, .. } => total += count,
                Batch::CaughtUp => return Ok(total),
                // Committed, not readable yet: a transaction that may precede them is open.
                Batch::HeldBack => tokio::time::sleep(self.poll.min(HELD_BACK_WAIT)).await,
            }
        }
    }

    /// [`run_once`](Self::run_once), taking a conflict after another runner's progress (the
    /// checkpoint moved past `seen`) as reading on.
    async fn next_batch(&self, seen: &mut u64) -> Result<Batch> {
        match self.apply_batch().await {
            Ok(Batch::Applied { count, last }) => {
                *seen = last;
                Ok(Batch::Applied { count, last })
            }
            Ok(nothing) => Ok(nothing),
            Err(error) if error.kind() == crate::ErrorKind::Conflict => {
                let now = self.position().await?;
                if now > *seen {
                    *seen = now;
                    // Someone else's batch: not caught up yet, read on.
                    Box::pin(self.next_batch(seen)).await
                } else {
                    Err(error)
                }
            }
            Err(error) => Err(error),
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
            Err(error) => return Err(uow.rollback_after(error, "a failed reset").await),
        }
        self.catch_up().await
    }

    /// Catches up, then follows new events every poll interval until `shutdown`. A failed
    /// batch (the store is unreachable, the projection fails) is logged, reported down to the
    /// [`report_to`](Self::report_to) part, and tried again after a wait that doubles up to
    /// 5 s; nothing of it committed. The part is reported up after each batch that succeeds
    /// following a failure (and after the first), so `since` says when it recovered.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        const MAX_WAIT: Duration = Duration::from_secs(5);
        tokio::pin!(shutdown);
        let mut seen = self.position().await.unwrap_or(0);
        let mut wait = self.poll;
        let mut reported_up: Option<bool> = None;
        loop {
            let outcome = self.next_batch(&mut seen).await;
            let up = outcome.is_ok();
            if up && reported_up != Some(true) {
                if let Some(part) = &self.health {
                    part.up();
                }
            }
            reported_up = Some(up);
            let pause = match outcome {
                // More may be waiting: the next batch at once (after a look at `shutdown`).
                Ok(Batch::Applied { .. }) => {
                    wait = self.poll;
                    Duration::ZERO
                }
                Ok(_) => {
                    wait = self.poll;
                    wait
                }
                Err(error) => {
                    tracing::warn!(%error, projection = %self.projection.name(), "projection batch failed; it is tried again");
                    if let Some(part) = &self.health {
                        part.down(format!(
                            "projection `{}` is stuck: {error}",
                            self.projection.name()
                        ));
                    }
                    wait = (wait * 2).min(MAX_WAIT.max(self.poll));
                    wait
                }
            };
            tokio::select! {
                biased;
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}
