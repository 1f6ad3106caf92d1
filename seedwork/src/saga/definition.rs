//! How a saga is written down: an [`Orchestration`] of [`Step`]s.

use std::any::{Any, TypeId};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::application::BusBuilder;
use crate::error::Result;
use crate::messaging::IntegrationMessage;
use crate::uow::UnitOfWork;

/// What a saga keeps between messages: any serde type (it is stored as JSON beside the
/// instance's position and log). Implemented for every such type.
pub trait SagaState: Serialize + DeserializeOwned + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> SagaState for T {}

/// What a received message means to the step that awaits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The step's command took effect: go on to the next step.
    Succeeded,
    /// The step's command was refused, for this reason: compensate the earlier steps.
    Failed(String),
    /// The step's compensation took effect (for a step that
    /// [awaits its compensation](Step::await_compensation)).
    Compensated,
}

/// A message written to the outbox by a step: what the log names.
pub(crate) struct Sent {
    pub(crate) message_type: String,
    pub(crate) message_id: String,
}

/// Builds a step's message from the saga's state and writes it to the outbox.
pub(crate) type SendFn<S> = Arc<dyn Fn(&S, &mut UnitOfWork) -> Result<Sent> + Send + Sync>;
/// Reads a decoded message (as `Any`) as a reply of a step, updating the state.
pub(crate) type ReplyFn<S> =
    Arc<dyn Fn(&(dyn Any + Send + Sync), &mut S) -> Option<Reply> + Send + Sync>;
/// Reads a decoded message (as `Any`) as the start of an instance.
pub(crate) type StartFn<S> = Arc<dyn Fn(&(dyn Any + Send + Sync)) -> Option<S> + Send + Sync>;

/// A message type a saga listens to, with what registers its handler on a bus.
#[derive(Clone, Copy)]
pub(crate) struct Listener {
    pub(crate) type_id: TypeId,
    pub(crate) topic: &'static str,
    /// Registers the saga's handler of this type for the saga's subscription.
    pub(crate) register: fn(&mut BusBuilder, subscription: String, engine: super::engine::Shared),
}

impl Listener {
    pub(crate) fn of<M: IntegrationMessage>() -> Self {
        Listener {
            type_id: TypeId::of::<M>(),
            topic: M::TOPIC,
            register: super::engine::register_listener::<M>,
        }
    }
}

fn sender<S, M, F>(make: F) -> SendFn<S>
where
    S: SagaState,
    M: IntegrationMessage,
    F: Fn(&S) -> M + Send + Sync + 'static,
{
    Arc::new(move |state: &S, uow: &mut UnitOfWork| {
        let message = make(state);
        let message_id = uow.enqueue_with_id(&message)?;
        Ok(Sent {
            message_type: message.message_type().to_string(),
            message_id,
        })
    })
}

/// One step of an [`Orchestration`]: the command it sends, the replies that tell how it went,
/// the compensation that undoes it, and how long it may take.
///
/// ```
/// use std::time::Duration;
/// use seedwork::saga::{Reply, Step};
/// # use seedwork::messaging::{IntegrationMessage, MessageKind};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Cobrar { pedido: String }
/// # impl IntegrationMessage for Cobrar { const TOPIC: &'static str = "comando-cobrar"; const TYPE: &'static str = "Cobrar"; const VERSION: &'static str = "v1"; const KIND: MessageKind = MessageKind::Command; }
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Reembolsar { pedido: String }
/// # impl IntegrationMessage for Reembolsar { const TOPIC: &'static str = "comando-reembolsar"; const TYPE: &'static str = "Reembolsar"; const VERSION: &'static str = "v1"; const KIND: MessageKind = MessageKind::Command; }
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Cobro { aceptado: bool }
/// # impl IntegrationMessage for Cobro { const TOPIC: &'static str = "evento-cobro"; const TYPE: &'static str = "Cobro"; const VERSION: &'static str = "v1"; const KIND: MessageKind = MessageKind::Event; }
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Pedido { id: String }
///
/// let cobro = Step::<Pedido>::new("cobro")
///     .command(|p: &Pedido| Cobrar { pedido: p.id.clone() })
///     .on_reply(|c: &Cobro, _: &mut Pedido| {
///         Some(if c.aceptado { Reply::Succeeded } else { Reply::Failed("rechazado".into()) })
///     })
///     .compensation(|p: &Pedido| Reembolsar { pedido: p.id.clone() })
///     .timeout(Duration::from_secs(30));
/// ```
pub struct Step<S> {
    pub(crate) name: String,
    pub(crate) command: Option<SendFn<S>>,
    pub(crate) compensation: Option<SendFn<S>>,
    pub(crate) await_compensation: bool,
    pub(crate) replies: Vec<(Listener, ReplyFn<S>)>,
    pub(crate) timeout: Option<Duration>,
}

impl<S: SagaState> Step<S> {
    /// A step named `name` (the name the log shows), with nothing yet.
    pub fn new(name: impl Into<String>) -> Self {
        Step {
            name: name.into(),
            command: None,
            compensation: None,
            await_compensation: false,
            replies: Vec::new(),
            timeout: None,
        }
    }

    /// The command the step sends (through the outbox, in the same transaction as the saga's
    /// state) when the saga reaches it. Only the first step may have none: the saga's starting
    /// message then stands for its success.
    pub fn command<M, F>(mut self, make: F) -> Self
    where
        M: IntegrationMessage,
        F: Fn(&S) -> M + Send + Sync + 'static,
    {
        self.command = Some(sender(make));
        self
    }

    /// The command that undoes the step, sent when a later step fails (or this one times out:
    /// its command may still take effect after the deadline, so a compensation must tolerate
    /// finding nothing to undo).
    pub fn compensation<M, F>(mut self, make: F) -> Self
    where
        M: IntegrationMessage,
        F: Fn(&S) -> M + Send + Sync + 'static,
    {
        self.compensation = Some(sender(make));
        self
    }

    /// Waits for a [`Reply::Compensated`] to this step's compensation before compensating the
    /// step before it, so that compensations take effect strictly in reverse order. Without
    /// it, the earlier steps' compensations are sent at once, in reverse order, in the same
    /// transaction.
    pub fn await_compensation(mut self) -> Self {
        self.await_compensation = true;
        self
    }

    /// How the step reads messages of type `M` (an event, or an enum of the events of one
    /// topic): `Some(reply)` when the message answers this step (the closure may update the
    /// state too), `None` when it is not this step's business.
    pub fn on_reply<M, F>(mut self, read: F) -> Self
    where
        M: IntegrationMessage,
        F: Fn(&M, &mut S) -> Option<Reply> + Send + Sync + 'static,
    {
        let reply: ReplyFn<S> = Arc::new(move |message, state| {
            message.downcast_ref::<M>().and_then(|m| read(m, state))
        });
        self.replies.push((Listener::of::<M>(), reply));
        self
    }

    /// How long the step may wait for its reply. When the deadline passes first, the step takes
    /// the failure path: its own compensation (see [`compensation`](Self::compensation)) and
    /// the earlier steps'. Deadlines are stored with the instance and survive a restart.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// A saga run by a coordinator: a starting message, then steps taken in order, each sending
/// its command and awaiting its reply; a failure compensates the steps already taken, in
/// reverse order, each once (the tutorial's `CoordinadorOrquestacion`, made to work).
///
/// An instance follows one conversation — one correlation id — from the starting message to
/// its end. Every message it sends carries that correlation id; the replies that come back
/// carry it too (the framework passes it from the message handled to the messages caused), so
/// no payload needs an `id_correlacion`. Register it with [`Sagas`](super::Sagas).
///
/// ```
/// use seedwork::saga::{Orchestration, Reply, Step};
/// # use seedwork::messaging::{IntegrationMessage, MessageKind};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct PedidoCreado { id: String }
/// # impl IntegrationMessage for PedidoCreado { const TOPIC: &'static str = "eventos-pedido"; const TYPE: &'static str = "PedidoCreado"; const VERSION: &'static str = "v1"; const KIND: MessageKind = MessageKind::Event; }
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Cobrar { pedido: String }
/// # impl IntegrationMessage for Cobrar { const TOPIC: &'static str = "comando-cobrar"; const TYPE: &'static str = "Cobrar"; const VERSION: &'static str = "v1"; const KIND: MessageKind = MessageKind::Command; }
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Cobro { aceptado: bool }
/// # impl IntegrationMessage for Cobro { const TOPIC: &'static str = "evento-cobro"; const TYPE: &'static str = "Cobro"; const VERSION: &'static str = "v1"; const KIND: MessageKind = MessageKind::Event; }
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Pedido { id: String }
///
/// let saga = Orchestration::new("pedido")
///     .start_on(|creado: &PedidoCreado| Some(Pedido { id: creado.id.clone() }))
///     .step(Step::new("cobro")
///         .command(|p: &Pedido| Cobrar { pedido: p.id.clone() })
///         .on_reply(|c: &Cobro, _: &mut Pedido| {
///             Some(if c.aceptado { Reply::Succeeded } else { Reply::Failed("rechazado".into()) })
///         }));
/// assert_eq!(saga.name(), "pedido");
/// ```
pub struct Orchestration<S> {
    pub(crate) name: String,
    pub(crate) start: Option<(Listener, StartFn<S>)>,
    pub(crate) steps: Vec<Step<S>>,
}

impl<S: SagaState> Orchestration<S> {
    /// A saga named `name`: the key of its instances in the store (with the correlation id),
    /// the name its log and its subscriptions carry.
    pub fn new(name: impl Into<String>) -> Self {
        Orchestration {
            name: name.into(),
            start: None,
            steps: Vec::new(),
        }
    }

    /// The saga's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The message that starts an instance: `Some(state)` starts one for the message's
    /// conversation (unless one exists), `None` leaves the message alone. The same type may
    /// also be a step's reply (an enum of a topic's events).
    pub fn start_on<M, F>(mut self, start: F) -> Self
    where
        M: IntegrationMessage,
        F: Fn(&M) -> Option<S> + Send + Sync + 'static,
    {
        let start: StartFn<S> =
            Arc::new(move |message| message.downcast_ref::<M>().and_then(&start));
        self.start = Some((Listener::of::<M>(), start));
        self
    }

    /// Appends a step.
    pub fn step(mut self, step: Step<S>) -> Self {
        self.steps.push(step);
        self
    }

    /// What makes the definition unable to run, if anything.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() {
            problems.push("the saga's name is blank".to_string());
        }
        if self.start.is_none() {
            problems.push("no starting message (Orchestration::start_on)".to_string());
        }
        if self.steps.is_empty() {
            problems.push("no steps".to_string());
        }
        for (index, step) in self.steps.iter().enumerate() {
            let name = &step.name;
            if step.command.is_none() && index > 0 {
                problems.push(format!(
                    "step `{name}` has no command; only the first step may have none"
                ));
            }
            if step.command.is_some() && !step.replies.iter().any(|_| true) {
                problems.push(format!(
                    "step `{name}` sends a command but reads no reply (Step::on_reply)"
                ));
            }
            if step.command.is_none() && step.timeout.is_some() {
                problems.push(format!("step `{name}` has a timeout but no command"));
            }
            if step.await_compensation && (step.compensation.is_none() || step.replies.is_empty()) {
                problems.push(format!(
                    "step `{name}` awaits its compensation but has no compensation or no reply"
                ));
            }
            if self.steps[..index].iter().any(|s| s.name == *name) {
                problems.push(format!("two steps are named `{name}`"));
            }
        }
        problems
    }
}
