//! Given/when/then fixtures for aggregates and command handlers.

use std::fmt::Debug;
use std::sync::Arc;

use crate::application::{Bus, BusBuilder, Command};
use crate::domain::{AggregateRoot, DomainEvent};
use crate::error::{Error, ErrorKind, Result};
use crate::memory::MemoryStore;
use crate::messaging::{Envelope, IntegrationMessage, Message};

/// Given an aggregate, when a behaviour runs, then these events (or this error).
///
/// ```
/// use seedwork::testing::fixtures::AggregateFixture;
/// use seedwork::testing::contract::store::{Account, Deposited};
///
/// AggregateFixture::given(Account::open("a-1"))
///     .when(|account| { account.deposit(5); Ok::<_, seedwork::domain::DomainError>(()) })
///     .then_event_names(&["Deposited"])
///     .then_event(|e: &Deposited| assert_eq!(e.amount, 5))
///     .then_state(|account| assert_eq!(account.balance, 5));
/// ```
pub struct AggregateFixture<A> {
    aggregate: A,
}

impl<A: AggregateRoot> AggregateFixture<A> {
    /// Starts from `aggregate`; events it already recorded are history, not outcome.
    pub fn given(mut aggregate: A) -> Self {
        aggregate.take_events();
        AggregateFixture { aggregate }
    }

    /// Runs a behaviour on the aggregate.
    pub fn when<R, E>(
        mut self,
        behaviour: impl FnOnce(&mut A) -> std::result::Result<R, E>,
    ) -> AggregateOutcome<A, R, E> {
        let result = behaviour(&mut self.aggregate);
        let events = self.aggregate.take_events();
        AggregateOutcome {
            aggregate: self.aggregate,
            result,
            events,
        }
    }
}

/// The outcome of [`AggregateFixture::when`], with assertions that panic on mismatch.
pub struct AggregateOutcome<A, R, E> {
    aggregate: A,
    result: std::result::Result<R, E>,
    events: Vec<Arc<dyn DomainEvent>>,
}

impl<A, R: Debug, E: Debug> AggregateOutcome<A, R, E> {
    /// Asserts the behaviour recorded exactly these events, by name, in order.
    #[track_caller]
    pub fn then_event_names(self, names: &[&str]) -> Self {
        let recorded: Vec<&str> = self.events.iter().map(|e| e.event_name()).collect();
        assert_eq!(
            recorded, names,
            "recorded events (result: {:?})",
            self.result
        );
        self
    }

    /// Asserts one event of type `T` was recorded and inspects it.
    #[track_caller]
    pub fn then_event<T: DomainEvent>(self, inspect: impl FnOnce(&T)) -> Self {
        let matching: Vec<&T> = self
            .events
            .iter()
            .filter_map(|e| {
                (e.as_any().downcast_ref::<T>()).or_else(|| e.routed().downcast_ref::<T>())
            })
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "expected one {}, recorded {:?}",
            std::any::type_name::<T>(),
            self.events
        );
        inspect(matching[0]);
        self
    }

    /// Asserts the behaviour failed and inspects the error; no event may have been recorded.
    #[track_caller]
    pub fn then_error(self, inspect: impl FnOnce(&E)) -> Self {
        match &self.result {
            Ok(value) => panic!("expected an error, got Ok({value:?})"),
            Err(error) => inspect(error),
        }
        assert!(
            self.events.is_empty(),
            "a failed behaviour recorded events: {:?}",
            self.events
        );
        self
    }

    /// Inspects the aggregate after the behaviour.
    pub fn then_state(self, inspect: impl FnOnce(&A)) -> Self {
        inspect(&self.aggregate);
        self
    }

    /// The behaviour's result.
    pub fn result(&self) -> &std::result::Result<R, E> {
        &self.result
    }

    /// The recorded events.
    pub fn events(&self) -> &[Arc<dyn DomainEvent>] {
        &self.events
    }
}

/// Given earlier commands, when a command is dispatched, then this result and these published
/// messages: for command handlers, run on a real bus over a [`MemoryStore`].
///
/// ```
/// use seedwork::prelude::*;
/// use seedwork::testing::fixtures::HandlerFixture;
///
/// struct Ping;
/// impl Command for Ping { type Output = u8; const NAME: &'static str = "Ping"; }
/// struct PingHandler;
/// #[seedwork::async_trait]
/// impl CommandHandler<Ping> for PingHandler {
///     async fn handle(&self, _: Ping, _: &mut UnitOfWork) -> Result<u8> { Ok(1) }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let fixture = HandlerFixture::new(|store| Bus::builder().store(store).command(PingHandler));
/// fixture.when(Ping).await.then_ok(|n| assert_eq!(*n, 1)).then_no_messages();
/// # });
/// ```
pub struct HandlerFixture {
    bus: Bus,
    store: MemoryStore,
}

impl HandlerFixture {
    /// Builds the bus with `configure`, which receives the fixture's store (pass it to
    /// [`BusBuilder::store`] and to your memory repositories). Panics if the bus does not
    /// build: a test setup error.
    #[track_caller]
    pub fn new(configure: impl FnOnce(Arc<MemoryStore>) -> BusBuilder) -> Self {
        let store = MemoryStore::new();
        let bus = match configure(Arc::new(store.clone())).build() {
            Ok(bus) => bus,
            Err(error) => panic!("the fixture's bus does not build: {error}"),
        };
        HandlerFixture { bus, store }
    }

    /// The bus under test.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// The store under test.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// Dispatches a command that must succeed (history).
    pub async fn given<C: Command>(self, command: C) -> Self {
        if let Err(error) = self.bus.dispatch(command).await {
            panic!("a given command failed: {error}");
        }
        self
    }

    /// Dispatches the command under test, capturing its result and the messages it put in
    /// the outbox.
    pub async fn when<C: Command>(&self, command: C) -> CommandOutcome<C::Output> {
        let before = self.store.outbox_snapshot().len();
        let result = self.bus.dispatch(command).await;
        let messages = self
            .store
            .outbox_snapshot()
            .into_iter()
            .skip(before)
            .map(|entry| entry.message)
            .collect();
        CommandOutcome { result, messages }
    }
}

/// The outcome of [`HandlerFixture::when`].
#[derive(Debug)]
pub struct CommandOutcome<T> {
    result: Result<T>,
    messages: Vec<Message>,
}

impl<T: Debug> CommandOutcome<T> {
    /// Asserts success and inspects the output.
    #[track_caller]
    pub fn then_ok(self, inspect: impl FnOnce(&T)) -> Self {
        match &self.result {
            Ok(value) => inspect(value),
            Err(error) => panic!("expected success, got {error:?}"),
        }
        self
    }

    /// Asserts failure of the given kind and inspects the error; nothing may have been
    /// published.
    #[track_caller]
    pub fn then_error(self, kind: ErrorKind, inspect: impl FnOnce(&Error)) -> Self {
        match &self.result {
            Ok(value) => panic!("expected a {kind:?} error, got Ok({value:?})"),
            Err(error) => {
                assert_eq!(error.kind(), kind, "error kind of {error:?}");
                inspect(error);
            }
        }
        assert!(
            self.messages.is_empty(),
            "a failed command published {:?}",
            self.messages
        );
        self
    }

    /// Asserts exactly one message of type `M` was published and inspects it.
    #[track_caller]
    pub fn then_published<M: IntegrationMessage + Debug>(
        self,
        inspect: impl FnOnce(&Envelope<M>),
    ) -> Self {
        let decoded: Vec<Envelope<M>> = self
            .messages
            .iter()
            .filter(|m| m.envelope.message_type == M::TYPE)
            .map(|m| match m.decode::<M>() {
                Ok(envelope) => envelope,
                Err(error) => panic!("published {} does not decode: {error}", M::TYPE),
            })
            .collect();
        assert_eq!(
            decoded.len(),
            1,
            "expected one {}, got {:?}",
            M::TYPE,
            self.messages
        );
        inspect(&decoded[0]);
        self
    }

    /// Asserts nothing was published.
    #[track_caller]
    pub fn then_no_messages(self) -> Self {
        assert!(self.messages.is_empty(), "published {:?}", self.messages);
        self
    }

    /// Every message the command published.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }
}
