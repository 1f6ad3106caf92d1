use std::any::Any;
use std::fmt;
use std::sync::Arc;

use tracing::Instrument;

use super::{EventDispatch, Transaction, TransactionalStore};
use crate::domain::{AggregateRoot, ChangeTracker, DomainEvent};
use crate::error::{Error, Result};
use std::collections::BTreeMap;

use crate::messaging::{
    IntegrationMessage, Message, TransactionalAck, BAGGAGE_PREFIX, CAUSATION_ID, CORRELATION_ID,
};

/// Domain events one commit may dispatch, counting those raised by domain-event handlers;
/// past it the commit fails rather than loop forever on handlers that keep raising events.
pub const MAX_EVENTS_PER_COMMIT: usize = 10_000;

/// A domain event waiting for the commit, with the aggregate that raised it.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    /// The aggregate type ([`AggregateRoot::TYPE`]).
    pub aggregate_type: &'static str,
    /// The aggregate id, as text; it becomes the ordering key of mapped messages.
    pub aggregate_id: String,
    /// The event.
    pub event: Arc<dyn DomainEvent>,
}

/// A point inside a unit of work that can be rolled back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Savepoint {
    name: String,
}

impl Savepoint {
    /// The savepoint's name in the backend.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What a commit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// Domain events dispatched (including those raised by handlers).
    pub events: usize,
    /// Integration messages written to the outbox.
    pub messages: usize,
}

/// One business transaction (`UnidadTrabajo`).
///
/// Repositories write through it and hand it the domain events of the aggregates they store
/// ([`track`](Self::track)). [`commit`](Self::commit) then, inside the one backend transaction:
/// 1. runs every domain-event handler for each event, in order — handlers receive this unit of
///    work and may change more aggregates and raise more events, which are handled in turn;
/// 2. maps the domain events to integration messages and appends them to the outbox;
/// 3. commits.
///
/// If any step fails, everything is rolled back and the error is returned: nothing reaches the
/// outbox (and so the broker) unless the business change committed. Dropping a unit of work
/// without committing rolls it back.
pub struct UnitOfWork {
    tx: Box<dyn Transaction>,
    dispatch: Arc<dyn EventDispatch>,
    pending: Vec<PendingEvent>,
    /// The correlation and causation current when each pending event was recorded: a unit of
    /// work that handles several messages (a consumer's batch) gives each one's consequences
    /// its own.
    pending_trace: Vec<Trace>,
    outgoing: Vec<Message>,
    savepoints: Vec<(String, usize, usize)>,
    next_savepoint: u32,
    trace: Trace,
    committing: bool,
}

/// Where the messages a unit of work writes come from: the conversation they belong to
/// (`correlation_id`, the same from the first request to the last message it led to) and the
/// message that caused them (`causation_id`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Trace {
    pub(crate) correlation_id: Option<String>,
    pub(crate) causation_id: Option<String>,
    pub(crate) baggage: BTreeMap<String, String>,
}

impl Trace {
    /// The trace of what handling `message` causes: its correlation (its own id when it
    /// carries none, so the conversation starts there), caused by it.
    pub(crate) fn caused_by(message: &Message) -> Trace {
        Trace {
            correlation_id: Some(
                message
                    .correlation_id()
                    .unwrap_or_else(|| message.id())
                    .to_string(),
            ),
            causation_id: Some(message.id().to_string()),
            baggage: message
                .baggage()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        }
    }
}

impl fmt::Debug for UnitOfWork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnitOfWork")
            .field("pending", &self.pending.len())
            .field("savepoints", &self.savepoints)
            .field("correlation_id", &self.trace.correlation_id)
            .field("causation_id", &self.trace.causation_id)
            .finish_non_exhaustive()
    }
}

impl UnitOfWork {
    /// Wraps an open transaction. `dispatch` says which handlers and mappers see the events
    /// (a bus opens its units of work with `Bus::unit_of_work`).
    pub fn new(tx: Box<dyn Transaction>, dispatch: Arc<dyn EventDispatch>) -> Self {
        UnitOfWork {
            tx,
            dispatch,
            pending: Vec::new(),
            pending_trace: Vec::new(),
            outgoing: Vec::new(),
            savepoints: Vec::new(),
            next_savepoint: 0,
            trace: Trace::default(),
            committing: false,
        }
    }

    /// Opens a transaction on `store` and wraps it.
    pub async fn begin(
        store: &dyn TransactionalStore,
        dispatch: Arc<dyn EventDispatch>,
    ) -> Result<Self> {
        Ok(UnitOfWork::new(store.begin().await?, dispatch))
    }

    /// Takes the aggregate's pending domain events into this unit of work
    /// (`registrar_batch`). Repositories call it from `add` and `update`.
    pub fn track<A: AggregateRoot>(&mut self, aggregate: &mut A) {
        (self as &mut dyn ChangeTracker).track(aggregate);
    }

    /// Records an event that no stored aggregate carries.
    pub fn record_event(
        &mut self,
        aggregate_type: &'static str,
        aggregate_id: impl Into<String>,
        event: impl DomainEvent,
    ) {
        self.pending.push(PendingEvent {
            aggregate_type,
            aggregate_id: aggregate_id.into(),
            event: Arc::new(event),
        });
        self.pending_trace.push(self.trace.clone());
    }

    /// Sends an integration message (an integration command to another service, say) through
    /// the outbox: it is written at commit, after the messages mapped from domain events, and
    /// reaches the broker only if the unit of work commits.
    pub fn enqueue<M: IntegrationMessage>(&mut self, message: &M) -> Result<()> {
        self.enqueue_with_id(message).map(|_| ())
    }

    /// Like [`enqueue`](Self::enqueue), answering the id the message will carry (for a log
    /// that names what was sent).
    pub fn enqueue_with_id<M: IntegrationMessage>(&mut self, message: &M) -> Result<String> {
        let mut message = Message::encode(message, self.dispatch.service_name())?;
        stamp(&mut message, &self.trace);
        let id = message.id().to_string();
        self.outgoing.push(message);
        Ok(id)
    }

    /// The events that the commit will dispatch.
    pub fn pending_events(&self) -> &[PendingEvent] {
        &self.pending
    }

    /// The backend transaction, as its concrete type. A repository of another backend gets
    /// [`Error::UnitOfWork`] instead of a panic.
    pub fn transaction<T: Transaction>(&mut self) -> Result<&mut T> {
        self.tx.as_any_mut().downcast_mut::<T>().ok_or_else(|| {
            Error::UnitOfWork(format!(
                "this unit of work runs on another backend than `{}`",
                std::any::type_name::<T>()
            ))
        })
    }

    /// The correlation id that messages written by this unit of work carry.
    pub fn correlation_id(&self) -> Option<&str> {
        self.trace.correlation_id.as_deref()
    }

    /// The id of the message whose handling this is, which messages written by this unit of
    /// work carry as their `causation_id`.
    pub fn causation_id(&self) -> Option<&str> {
        self.trace.causation_id.as_deref()
    }

    /// Sets the correlation id (from the HTTP request or the message being handled). Events
    /// recorded and messages enqueued from now on carry it (and so do the messages that
    /// domain-event handlers send for those events); what was recorded before keeps the id it
    /// was recorded under.
    pub fn set_correlation_id(&mut self, correlation_id: impl Into<String>) {
        self.trace.correlation_id = Some(correlation_id.into());
    }

    /// Sets the causation id: the id of the message that caused what follows (the bus sets it
    /// to the handled message's id). Like the correlation id, it applies from now on.
    pub fn set_causation_id(&mut self, causation_id: impl Into<String>) {
        self.trace.causation_id = Some(causation_id.into());
    }

    /// Sets an item of the conversation's baggage (see
    /// [`BAGGAGE_PREFIX`](crate::messaging::BAGGAGE_PREFIX)): like the correlation id, what is
    /// recorded and sent from now on carries it, and the services that handle those messages
    /// pass it on.
    pub fn set_baggage(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.trace.baggage.insert(key.into(), value.into());
    }

    /// An item of the conversation's baggage: set on this unit of work, or carried by the
    /// message being handled.
    pub fn baggage(&self, key: &str) -> Option<&str> {
        self.trace.baggage.get(key).map(String::as_str)
    }

    /// Replaces the trace: a consumer handling several messages in one unit of work switches
    /// to each one's.
    pub(crate) fn replace_trace(&mut self, trace: Trace) {
        self.trace = trace;
    }

    /// Marks a savepoint (`savepoint`): [`rollback_to`](Self::rollback_to) it undoes later
    /// changes and forgets later events, keeping earlier work.
    pub async fn savepoint(&mut self) -> Result<Savepoint> {
        self.next_savepoint += 1;
        let name = format!("seedwork_sp_{}", self.next_savepoint);
        self.tx.savepoint(&name).await?;
        self.savepoints
            .push((name.clone(), self.pending.len(), self.outgoing.len()));
        Ok(Savepoint { name })
    }

    /// Rolls back to `savepoint` (`rollback(savepoint)`). Savepoints taken after it are gone.
    pub async fn rollback_to(&mut self, savepoint: &Savepoint) -> Result<()> {
        if self.committing {
            return Err(Error::UnitOfWork(
                "cannot roll back to a savepoint while the commit runs domain-event handlers"
                    .into(),
            ));
        }
        let position = self
            .savepoints
            .iter()
            .position(|(name, _, _)| *name == savepoint.name)
            .ok_or_else(|| {
                Error::UnitOfWork(format!(
                    "savepoint `{}` is unknown or was rolled back",
                    savepoint.name
                ))
            })?;
        self.tx.rollback_to_savepoint(&savepoint.name).await?;
        let (_, events_then, messages_then) = self.savepoints[position];
        self.pending.truncate(events_then);
        self.pending_trace.truncate(events_then);
        self.outgoing.truncate(messages_then);
        self.savepoints.truncate(position + 1);
        Ok(())
    }

    /// Records that `consumer` processed `message_id`, in this transaction. `false` means it
    /// already had: skip the message.
    pub async fn record_inbox(&mut self, consumer: &str, message_id: &str) -> Result<bool> {
        self.tx.record_inbox(consumer, message_id).await
    }

    /// Records that `consumer` processed each of `message_ids`, in this transaction: one
    /// answer per id, `false` for one already recorded (or listed before), whose message is
    /// then skipped. See [`Transaction::record_inbox_many`].
    pub async fn record_inbox_many(
        &mut self,
        consumer: &str,
        message_ids: &[&str],
    ) -> Result<Vec<bool>> {
        self.tx.record_inbox_many(consumer, message_ids).await
    }

    /// Writes a consumer's acknowledgements in this transaction (see
    /// [`Transaction::acknowledge`]): `true` if they commit or roll back with it, `false` if
    /// the store cannot carry them and they must be settled the usual way after the commit.
    pub async fn acknowledge(&mut self, acknowledgements: &TransactionalAck) -> Result<bool> {
        self.tx.acknowledge(acknowledgements).await
    }

    /// Dispatches the domain events, writes the outbox and commits; on any failure rolls back
    /// and returns the failure.
    ///
    /// Runs in a `commit` debug span: its close event (with span events on) times the
    /// handlers of the domain events, the outbox rows and the store's commit together.
    pub async fn commit(mut self) -> Result<CommitReport> {
        let span = tracing::debug_span!("commit");
        async move {
            match self.dispatch_and_write_outbox().await {
                Ok(report) => {
                    self.tx.commit().await?;
                    Ok(report)
                }
                Err(error) => Err(self.rollback_after(error, "a failed commit").await),
            }
        }
        .instrument(span)
        .await
    }

    /// Discards everything.
    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await
    }

    /// Discards everything after `error` (what made the work fail) and gives `error` back: a
    /// rollback that fails too is logged, with `after` saying what failed, and the original
    /// error is the one that counts. For the failure arm of a unit of work's caller:
    /// `Err(error) => Err(uow.rollback_after(error, "a failed message").await)`.
    pub async fn rollback_after(self, error: Error, after: &str) -> Error {
        if let Err(rollback_error) = self.tx.rollback().await {
            tracing::warn!(%rollback_error, %error, "rollback after {after} failed");
        }
        error
    }

    async fn dispatch_and_write_outbox(&mut self) -> Result<CommitReport> {
        self.committing = true;
        let dispatch = Arc::clone(&self.dispatch);
        let mut next = 0;
        while next < self.pending.len() {
            if next >= MAX_EVENTS_PER_COMMIT {
                return Err(Error::UnitOfWork(format!(
                    "more than {MAX_EVENTS_PER_COMMIT} domain events in one commit; \
                     do domain-event handlers raise events in a cycle?"
                )));
            }
            let pending = self.pending[next].clone();
            // What a handler records or sends for this event is part of its correlation.
            self.trace = self.pending_trace[next].clone();
            dispatch.handle(&pending, self).await?;
            next += 1;
        }
        let mut messages = Vec::new();
        for (pending, trace) in self.pending.iter().zip(&self.pending_trace) {
            let mapped = messages.len();
            dispatch.map_to_messages(pending, &mut messages)?;
            for message in &mut messages[mapped..] {
                stamp(message, trace);
            }
        }
        messages.append(&mut self.outgoing);
        let report = CommitReport {
            events: self.pending.len(),
            messages: messages.len(),
        };
        if !messages.is_empty() {
            self.tx.append_outbox(messages).await?;
        }
        Ok(report)
    }
}

/// Gives `message` the correlation and causation ids, those there are, and the baggage.
fn stamp(message: &mut Message, trace: &Trace) {
    for (key, value) in &trace.baggage {
        message
            .properties
            .insert(format!("{BAGGAGE_PREFIX}{key}"), value.clone());
    }
    for (property, value) in [
        (CORRELATION_ID, &trace.correlation_id),
        (CAUSATION_ID, &trace.causation_id),
    ] {
        if let Some(value) = value {
            message
                .properties
                .insert(property.to_string(), value.clone());
        }
    }
}

/// How repositories see a unit of work: they run their statements in its transaction and hand
/// it the events of the aggregates they store.
impl ChangeTracker for UnitOfWork {
    fn track_events(
        &mut self,
        aggregate_type: &'static str,
        aggregate_id: String,
        events: Vec<Arc<dyn DomainEvent>>,
    ) {
        let before = self.pending.len();
        self.pending
            .extend(events.into_iter().map(|event| PendingEvent {
                aggregate_type,
                aggregate_id: aggregate_id.clone(),
                event,
            }));
        let recorded = self.pending.len() - before;
        self.pending_trace
            .extend(std::iter::repeat_n(self.trace.clone(), recorded));
    }

    fn backend_transaction(&mut self) -> &mut dyn Any {
        self.tx.as_any_mut()
    }
}
