//! [`EventSourcedRepository`]: load by replay, save by append.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;

use super::{EventSourced, EventStore, NewEvent, Snapshot, StoredEvent};
use crate::domain::{ChangeTracker, DomainEvent, Page, PageRequest, Repository};
use crate::error::{Error, Result};

/// A [`Repository`] for an event-sourced aggregate `A` on any [`EventStore`].
///
/// - `get` replays the aggregate's stream, from its latest snapshot when there is one; an id
///   with no stream is `None`.
/// - `add` and `update` append the events the aggregate recorded since it was loaded, expecting
///   the stream still at the version it was loaded at: a concurrent append makes it
///   [`Error::Conflict`] (an HTTP 409), and no event is lost. The events are then dispatched at
///   commit like any aggregate's.
/// - every [`snapshot_every`](Self::snapshot_every) events, the state is saved as a snapshot in
///   the same transaction.
/// - `list` and `remove` are refused: a listing is a projection's job, and a stream is kept
///   forever.
pub struct EventSourcedRepository<A> {
    store: Arc<dyn EventStore>,
    snapshot_every: Option<u64>,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A> Clone for EventSourcedRepository<A> {
    fn clone(&self) -> Self {
        EventSourcedRepository {
            store: Arc::clone(&self.store),
            snapshot_every: self.snapshot_every,
            _aggregate: PhantomData,
        }
    }
}

impl<A: EventSourced> fmt::Debug for EventSourcedRepository<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSourcedRepository")
            .field("aggregate", &A::TYPE)
            .field("snapshot_every", &self.snapshot_every)
            .finish()
    }
}

impl<A: EventSourced> EventSourcedRepository<A> {
    /// A repository on `store`, without snapshots.
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        EventSourcedRepository {
            store,
            snapshot_every: None,
            _aggregate: PhantomData,
        }
    }

    /// Saves a snapshot whenever a save crosses a multiple of `every` events (0: never).
    pub fn snapshot_every(mut self, every: u64) -> Self {
        self.snapshot_every = (every > 0).then_some(every);
        self
    }

    /// A stored event as `A::Event`, upcast first from the version it was stored in to
    /// `A::EVENT_VERSION`.
    fn decode(event: &StoredEvent) -> Result<A::Event> {
        event.decode(A::EVENT_VERSION)
    }

    /// The aggregate from its snapshot (if any) and the events after it; `None` when the
    /// stream is empty and there is no snapshot.
    fn fold(id: &A::Id, snapshot: Option<Snapshot>, events: &[StoredEvent]) -> Result<Option<A>> {
        let (mut aggregate, mut version) = match snapshot {
            Some(snapshot) => {
                let aggregate: A = serde_json::from_value(snapshot.state)
                    .map_err(|e| Error::codec(format!("{} snapshot", A::TYPE), e))?;
                (aggregate, snapshot.version)
            }
            None if events.is_empty() => return Ok(None),
            None => (A::empty(id), 0),
        };
        for event in events {
            aggregate.apply(&Self::decode(event)?);
            version = event.version;
        }
        aggregate.state_mut().set_version(version);
        Ok(Some(aggregate))
    }

    /// The aggregate's recorded events, as the store takes them.
    fn pending(aggregate: &A) -> Result<Vec<NewEvent>> {
        aggregate
            .state()
            .pending_events()
            .iter()
            .map(|event| {
                let event = event.as_any().downcast_ref::<A::Event>().ok_or_else(|| {
                    Error::UnitOfWork(format!(
                        "{} recorded a `{}`, which is not its event type; record events \
                         with EventSourced::raise",
                        A::TYPE,
                        event.event_name()
                    ))
                })?;
                let data = serde_json::to_value(event)
                    .map_err(|e| Error::codec(format!("{} event", A::TYPE), e))?;
                Ok(NewEvent {
                    event_type: A::event_type(event),
                    event_version: A::EVENT_VERSION.to_string(),
                    data,
                    occurred_at: event.metadata().occurred_at.timestamp_millis(),
                })
            })
            .collect()
    }

    async fn save(&self, uow: &mut dyn ChangeTracker, aggregate: &mut A) -> Result<()> {
        let id = aggregate.id().to_string();
        let expected = aggregate.version();
        let events = Self::pending(aggregate)?;
        if events.is_empty() {
            return Ok(());
        }
        let version = self
            .store
            .append(uow, A::TYPE, &id, expected, &events)
            .await?;
        aggregate.state_mut().set_version(version);
        if let Some(every) = self.snapshot_every {
            if version / every > expected / every {
                let state = serde_json::to_value(&*aggregate)
                    .map_err(|e| Error::codec(format!("{} snapshot", A::TYPE), e))?;
                self.store
                    .save_snapshot(uow, A::TYPE, &id, &Snapshot { version, state })
                    .await?;
            }
        }
        uow.track(aggregate);
        Ok(())
    }
}

#[async_trait]
impl<A: EventSourced> Repository<A> for EventSourcedRepository<A> {
    async fn get(&self, id: &A::Id) -> Result<Option<A>> {
        let key = id.to_string();
        // Without snapshots configured, a full replay: no read of a snapshot that is not kept.
        let snapshot = match self.snapshot_every {
            Some(_) => self.store.load_snapshot(A::TYPE, &key).await?,
            None => None,
        };
        let after = snapshot.as_ref().map_or(0, |s| s.version);
        let events = self.store.load(A::TYPE, &key, after).await?;
        Self::fold(id, snapshot, &events)
    }

    async fn get_for_update(&self, uow: &mut dyn ChangeTracker, id: &A::Id) -> Result<Option<A>> {
        let key = id.to_string();
        // A snapshot commits with the events it includes, so the events after it are there.
        // Read on the unit of work's own connection: a second one from the pool could wait
        // forever when every connection is held by a unit of work doing the same.
        let snapshot = match self.snapshot_every {
            Some(_) => self.store.load_snapshot_in(uow, A::TYPE, &key).await?,
            None => None,
        };
        let after = snapshot.as_ref().map_or(0, |s| s.version);
        let events = self.store.load_in(uow, A::TYPE, &key, after).await?;
        Self::fold(id, snapshot, &events)
    }

    async fn list(&self, _page: &PageRequest) -> Result<Page<A>> {
        Err(Error::other(format!(
            "{} is event-sourced: list it through a projection",
            A::TYPE
        )))
    }

    async fn add(&self, uow: &mut dyn ChangeTracker, aggregate: &mut A) -> Result<()> {
        if aggregate.version() != 0 {
            return Err(Error::Conflict {
                aggregate: A::TYPE,
                id: aggregate.id().to_string(),
                expected: 0,
            });
        }
        self.save(uow, aggregate).await
    }

    async fn update(&self, uow: &mut dyn ChangeTracker, aggregate: &mut A) -> Result<()> {
        self.save(uow, aggregate).await
    }

    async fn remove(&self, _uow: &mut dyn ChangeTracker, id: &A::Id) -> Result<()> {
        Err(Error::other(format!(
            "{} `{id}` is event-sourced: its stream is kept; record an event that closes it",
            A::TYPE
        )))
    }
}
