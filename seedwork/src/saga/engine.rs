//! Runs an [`Orchestration`]: what one message, or one passed deadline, does to an instance.
//!
//! Each call happens inside the unit of work of the message being handled (or of the deadline
//! being taken): the instance is loaded (locked where the backend can), changed, its commands
//! enqueued to the outbox and the instance saved, all in that one transaction. A redelivered
//! message is absorbed by the inbox before it gets here; a concurrent change of the instance is
//! a conflict that rolls the whole unit of work back, and the message comes again.

use std::any::{Any, TypeId};
use std::sync::Arc;

use async_trait::async_trait;

use super::definition::{Reply, SagaState};
use super::{Orchestration, SagaLogEntry, SagaLogKind, SagaRecord, SagaStatus, SagaStore};
use crate::application::{BusBuilder, MessageHandler};
use crate::error::{Error, Result};
use crate::messaging::{now_millis, Envelope, IntegrationMessage};
use crate::uow::UnitOfWork;

/// A running saga, its state type erased.
pub(crate) type Shared = Arc<dyn ErasedSaga>;

/// The message being handled, as the log names it.
pub(crate) struct Inbound<'a> {
    pub(crate) message_type: &'a str,
    pub(crate) message_id: &'a str,
}

#[async_trait]
pub(crate) trait ErasedSaga: Send + Sync {
    /// The saga's name.
    fn name(&self) -> &str;

    /// Handles a message of type `type_id` (`message` is the decoded payload) for the unit of
    /// work's conversation.
    async fn on_message(
        &self,
        type_id: TypeId,
        message: &(dyn Any + Send + Sync),
        inbound: Inbound<'_>,
        uow: &mut UnitOfWork,
    ) -> Result<()>;

    /// Takes the instance's passed deadline, if it still is one at `now`; `false` when there was
    /// nothing to do (the reply came meanwhile).
    async fn on_deadline(
        &self,
        correlation_id: &str,
        now: i64,
        uow: &mut UnitOfWork,
    ) -> Result<bool>;
}

/// An orchestration with the store its instances live in.
pub(crate) struct Engine<S> {
    pub(crate) definition: Orchestration<S>,
    pub(crate) store: Arc<dyn SagaStore>,
}

/// One instance being changed: its record and its decoded state.
struct Instance<'a, S> {
    record: SagaRecord,
    state: S,
    now: i64,
    definition: &'a Orchestration<S>,
}

impl<S: SagaState> Instance<'_, S> {
    fn log(
        &mut self,
        step: usize,
        kind: SagaLogKind,
        message: Option<(&str, &str)>,
        detail: Option<String>,
    ) {
        let step = self
            .definition
            .steps
            .get(step)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let (message_type, message_id) = match message {
            Some((message_type, id)) => (message_type.to_string(), Some(id.to_string())),
            None => (String::new(), None),
        };
        self.record.log.push(SagaLogEntry {
            at: self.now,
            step,
            kind,
            message_type,
            message_id,
            detail,
        });
    }

    /// Takes the steps from `index` on: sends the first command found and waits for its reply,
    /// or completes the saga when none is left. A step without a command (only the first may
    /// have none) succeeds with the message that reached it.
    fn advance(
        &mut self,
        mut index: usize,
        inbound: &Inbound<'_>,
        uow: &mut UnitOfWork,
    ) -> Result<()> {
        let steps = &self.definition.steps;
        loop {
            let Some(step) = steps.get(index) else {
                self.record.status = SagaStatus::Completed;
                self.record.step = steps.len().saturating_sub(1);
                self.record.deadline = None;
                self.log(self.record.step, SagaLogKind::Completed, None, None);
                return Ok(());
            };
            let Some(command) = &step.command else {
                self.log(
                    index,
                    SagaLogKind::Succeeded,
                    Some((inbound.message_type, inbound.message_id)),
                    None,
                );
                index += 1;
                continue;
            };
            let sent = command(&self.state, uow)?;
            self.record.status = SagaStatus::Running;
            self.record.step = index;
            self.record.deadline = step.timeout.map(|t| {
                self.now
                    .saturating_add(i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
            });
            self.log(
                index,
                SagaLogKind::CommandSent,
                Some((&sent.message_type, &sent.message_id)),
                None,
            );
            return Ok(());
        }
    }

    /// Compensates the steps from `from` down to the first, in reverse order: sends each
    /// compensation, stopping at a step that awaits its compensation's confirmation. When none
    /// is left, the saga has ended without its goal.
    fn compensate(&mut self, from: Option<usize>, uow: &mut UnitOfWork) -> Result<()> {
        self.record.deadline = None;
        let mut next = from;
        while let Some(index) = next {
            let step = &self.definition.steps[index];
            next = index.checked_sub(1);
            let Some(compensation) = &step.compensation else {
                continue;
            };
            let await_it = step.await_compensation;
            let sent = compensation(&self.state, uow)?;
            self.log(
                index,
                SagaLogKind::CompensationSent,
                Some((&sent.message_type, &sent.message_id)),
                None,
            );
            if await_it {
                self.record.status = SagaStatus::Compensating;
                self.record.step = index;
                return Ok(());
            }
        }
        // Back where it started: every step taken has been undone.
        self.record.status = SagaStatus::Compensated;
        self.record.step = 0;
        self.log(0, SagaLogKind::Aborted, None, self.record.failure.clone());
        Ok(())
    }
}

/// The conversation the unit of work handles: the bus sets it for every message it handles
/// (the message's own id when it carries none), so a saga always has one when a consumer calls.
pub(crate) fn conversation(uow: &UnitOfWork) -> Result<String> {
    uow.correlation_id().map(str::to_string).ok_or_else(|| {
        Error::UnitOfWork("a saga handles messages in a unit of work with a correlation id".into())
    })
}

impl<S: SagaState> Engine<S> {
    fn state_error(&self, error: serde_json::Error) -> Error {
        Error::codec(format!("saga `{}` state", self.definition.name), error)
    }

    fn decode(&self, state: &serde_json::Value) -> Result<S> {
        serde_json::from_value(state.clone()).map_err(|e| self.state_error(e))
    }

    fn encode(&self, state: &S) -> Result<serde_json::Value> {
        serde_json::to_value(state).map_err(|e| self.state_error(e))
    }

    async fn save(&self, instance: Instance<'_, S>, uow: &mut UnitOfWork) -> Result<()> {
        let mut record = instance.record;
        record.state = self.encode(&instance.state)?;
        self.store.save(uow, &mut record).await
    }

    /// The first reply reader of step `index` for messages of `type_id` that recognises
    /// `message`, applied to a copy of the state (kept only if it answered).
    fn reply(
        &self,
        index: usize,
        type_id: TypeId,
        message: &(dyn Any + Send + Sync),
        state: &S,
    ) -> Result<Option<(Reply, S)>> {
        let Some(step) = self.definition.steps.get(index) else {
            return Ok(None);
        };
        for (listener, read) in &step.replies {
            if listener.type_id != type_id {
                continue;
            }
            // Work on a copy: a reader that does not answer leaves the state as it was.
            let mut copy = self.decode(&self.encode(state)?)?;
            if let Some(reply) = read(message, &mut copy) {
                return Ok(Some((reply, copy)));
            }
        }
        Ok(None)
    }
}

#[async_trait]
impl<S: SagaState> ErasedSaga for Engine<S> {
    fn name(&self) -> &str {
        &self.definition.name
    }

    async fn on_message(
        &self,
        type_id: TypeId,
        message: &(dyn Any + Send + Sync),
        inbound: Inbound<'_>,
        uow: &mut UnitOfWork,
    ) -> Result<()> {
        let correlation_id = conversation(uow)?;
        let name = &self.definition.name;
        let now = now_millis();
        let message_ref = Some((inbound.message_type, inbound.message_id));
        let Some(record) = self.store.load(uow, name, &correlation_id).await? else {
            let Some((listener, start)) = &self.definition.start else {
                return Ok(());
            };
            if listener.type_id != type_id {
                return Ok(());
            }
            let Some(state) = start(message) else {
                return Ok(());
            };
            let record = SagaRecord::new(name.clone(), correlation_id, serde_json::Value::Null);
            let mut instance = Instance {
                record,
                state,
                now,
                definition: &self.definition,
            };
            instance.log(0, SagaLogKind::Started, message_ref, None);
            instance.advance(0, &inbound, uow)?;
            tracing::debug!(saga = %name, status = %instance.record.status, "saga started");
            return self.save(instance, uow).await;
        };
        let state = self.decode(&record.state)?;
        let mut instance = Instance {
            record,
            state,
            now,
            definition: &self.definition,
        };
        let step = instance.record.step;
        let answer = match instance.record.status {
            SagaStatus::Running | SagaStatus::Compensating => {
                self.reply(step, type_id, message, &instance.state)?
            }
            SagaStatus::Completed | SagaStatus::Compensated => None,
        };
        match (instance.record.status, answer) {
            (SagaStatus::Running, Some((Reply::Succeeded, state))) => {
                instance.state = state;
                instance.log(step, SagaLogKind::Succeeded, message_ref, None);
                instance.advance(step + 1, &inbound, uow)?;
            }
            (SagaStatus::Running, Some((Reply::Failed(reason), state))) => {
                instance.state = state;
                instance.log(step, SagaLogKind::Failed, message_ref, Some(reason.clone()));
                instance.record.failure = Some(format!(
                    "step `{}` failed: {reason}",
                    self.definition.steps[step].name
                ));
                instance.compensate(step.checked_sub(1), uow)?;
            }
            (SagaStatus::Compensating, Some((Reply::Compensated, state))) => {
                instance.state = state;
                instance.log(step, SagaLogKind::Compensated, message_ref, None);
                instance.compensate(step.checked_sub(1), uow)?;
            }
            (status, _) => {
                let why = format!("not awaited while {status} at step `{}`", {
                    self.definition
                        .steps
                        .get(step)
                        .map(|s| s.name.as_str())
                        .unwrap_or_default()
                });
                instance.log(step, SagaLogKind::Ignored, message_ref, Some(why));
            }
        }
        self.save(instance, uow).await
    }

    async fn on_deadline(
        &self,
        correlation_id: &str,
        now: i64,
        uow: &mut UnitOfWork,
    ) -> Result<bool> {
        let name = &self.definition.name;
        let Some(record) = self.store.load(uow, name, correlation_id).await? else {
            return Ok(false);
        };
        let passed = record.status == SagaStatus::Running
            && record.deadline.is_some_and(|deadline| deadline <= now);
        if !passed {
            return Ok(false);
        }
        let state = self.decode(&record.state)?;
        let mut instance = Instance {
            record,
            state,
            now,
            definition: &self.definition,
        };
        let step = instance.record.step;
        let step_name = self.definition.steps[step].name.clone();
        instance.log(step, SagaLogKind::TimedOut, None, None);
        instance.record.failure = Some(format!("step `{step_name}` timed out"));
        // The command may still take effect after the deadline: undo it too.
        instance.compensate(Some(step), uow)?;
        self.save(instance, uow).await?;
        Ok(true)
    }
}

/// The handler a saga registers for one message type, on its own subscription.
struct SagaHandler<M> {
    engine: Shared,
    _message: std::marker::PhantomData<fn(M)>,
}

#[async_trait]
impl<M: IntegrationMessage> MessageHandler<M> for SagaHandler<M> {
    async fn handle(&self, message: Envelope<M>, uow: &mut UnitOfWork) -> Result<()> {
        let inbound = Inbound {
            message_type: &message.message_type,
            message_id: &message.id,
        };
        self.engine
            .on_message(TypeId::of::<M>(), &message.data, inbound, uow)
            .await
    }
}

/// Registers `engine`'s handler of `M` for `subscription` (instantiated per message type by
/// the step that reads it).
pub(crate) fn register_listener<M: IntegrationMessage>(
    builder: &mut BusBuilder,
    subscription: String,
    engine: Shared,
) {
    let name = format!("saga `{}`", engine.name());
    builder.add_scoped_message_handler::<M>(
        Some(subscription),
        name,
        SagaHandler::<M> {
            engine,
            _message: std::marker::PhantomData,
        },
    );
}
