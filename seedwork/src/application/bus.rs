use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use tracing::Instrument;

use super::type_map::TypeMap;

use super::{
    BoxFuture, BusBuilder, Command, CommandHandler, EventRouter, MessageHandler, Query,
    QueryHandler, Resources,
};
use crate::error::{Error, HandlerKind, Result};
use crate::messaging::{IntegrationMessage, Message};
use crate::uow::{EventDispatch, TransactionalStore, UnitOfWork};

/// An integration-message handler with its message type erased: decodes, then handles.
pub(crate) trait ErasedMessageHandler: Send + Sync {
    fn handle<'a>(
        &'a self,
        message: &'a Message,
        uow: &'a mut UnitOfWork,
    ) -> BoxFuture<'a, Result<()>>;
}

pub(crate) struct TypedMessageHandler<M, H> {
    handler: H,
    _message: PhantomData<fn(M)>,
}

impl<M, H> TypedMessageHandler<M, H> {
    pub(crate) fn new(handler: H) -> Self {
        TypedMessageHandler {
            handler,
            _message: PhantomData,
        }
    }
}

impl<M: IntegrationMessage, H: MessageHandler<M>> ErasedMessageHandler
    for TypedMessageHandler<M, H>
{
    fn handle<'a>(
        &'a self,
        message: &'a Message,
        uow: &'a mut UnitOfWork,
    ) -> BoxFuture<'a, Result<()>> {
        match message.decode::<M>() {
            Ok(envelope) => self.handler.handle(envelope, uow),
            Err(error) => Box::pin(async move { Err(error) }),
        }
    }
}

/// The conversation a command dispatched with [`Bus::dispatch_with`] belongs to: its
/// correlation id and its baggage (see
/// [`BAGGAGE_PREFIX`](crate::messaging::BAGGAGE_PREFIX)).
///
/// ```
/// use seedwork::application::Context;
/// let context = Context::new().correlation_id("c-1").baggage("tenant", "acme");
/// assert_eq!(context.correlation(), Some("c-1"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    correlation_id: Option<String>,
    baggage: std::collections::BTreeMap<String, String>,
}

impl Context {
    /// No correlation id (the unit of work starts none) and no baggage.
    pub fn new() -> Self {
        Context::default()
    }

    /// The conversation's correlation id.
    pub fn correlation_id(mut self, correlation_id: impl Into<String>) -> Self {
        self.correlation_id = Some(correlation_id.into());
        self
    }

    /// An item of baggage.
    pub fn baggage(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.baggage.insert(key.into(), value.into());
        self
    }

    /// The correlation id, if set.
    pub fn correlation(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }
}

pub(crate) struct BusParts {
    pub(crate) commands: TypeMap<Box<dyn Any + Send + Sync>>,
    pub(crate) queries: TypeMap<Box<dyn Any + Send + Sync>>,
    pub(crate) messages: HashMap<String, Arc<dyn ErasedMessageHandler>>,
    /// Handlers that serve one subscription only, by subscription and message type.
    pub(crate) scoped: HashMap<(String, String), Arc<dyn ErasedMessageHandler>>,
    pub(crate) router: Arc<EventRouter>,
    pub(crate) store: Arc<dyn TransactionalStore>,
    pub(crate) resources: Resources,
}

/// Routes commands, queries and integration messages to their handlers (the Python
/// `ejecutar_commando` / `ejecutar_query` dispatchers, and the consumers' dispatch).
///
/// Cheap to clone; share one per process. Build it with [`Bus::builder`].
#[derive(Clone)]
pub struct Bus {
    inner: Arc<BusParts>,
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("commands", &self.inner.commands.len())
            .field("queries", &self.inner.queries.len())
            .field("messages", &self.inner.messages.len())
            .field("router", &self.inner.router)
            .finish()
    }
}

impl Bus {
    /// Starts building a bus.
    pub fn builder() -> BusBuilder {
        BusBuilder::new()
    }

    pub(crate) fn from_parts(parts: BusParts) -> Self {
        Bus {
            inner: Arc::new(parts),
        }
    }

    /// Runs `command` through its handler in a fresh unit of work, committed when the handler
    /// succeeds. An unregistered command is [`Error::NoHandler`] naming it.
    pub async fn dispatch<C: Command>(&self, command: C) -> Result<C::Output> {
        self.dispatch_inner(command, Context::default()).await
    }

    /// Like [`dispatch`](Self::dispatch), in the conversation `context` names: its correlation
    /// id and baggage go on the unit of work, so every message the command leads to carries
    /// them.
    pub async fn dispatch_with<C: Command>(
        &self,
        command: C,
        context: Context,
    ) -> Result<C::Output> {
        self.dispatch_inner(command, context).await
    }

    /// Like [`dispatch`](Self::dispatch), tagging the unit of work, its outgoing messages and
    /// the trace with `correlation_id`.
    pub async fn dispatch_correlated<C: Command>(
        &self,
        command: C,
        correlation_id: impl Into<String>,
    ) -> Result<C::Output> {
        self.dispatch_inner(command, Context::new().correlation_id(correlation_id))
            .await
    }

    async fn dispatch_inner<C: Command>(&self, command: C, context: Context) -> Result<C::Output> {
        let handler = self.command_handler::<C>()?;
        let Context {
            correlation_id,
            baggage,
        } = context;
        let span = tracing::debug_span!(
            "command",
            name = C::NAME,
            correlation_id = correlation_id.as_deref()
        );
        async move {
            let mut uow = self.begin_timed().await?;
            if let Some(correlation_id) = correlation_id {
                uow.set_correlation_id(correlation_id);
            }
            for (key, value) in baggage {
                uow.set_baggage(key, value);
            }
            match handler.handle(command, &mut uow).await {
                Ok(output) => {
                    uow.commit().await?;
                    Ok(output)
                }
                Err(error) => Err(uow.rollback_after(error, "a failed command").await),
            }
        }
        .instrument(span)
        .await
    }

    /// Runs `query` through its handler. An unregistered query is [`Error::NoHandler`].
    pub async fn query<Q: Query>(&self, query: Q) -> Result<Q::Output> {
        let handler = self
            .inner
            .queries
            .get(&TypeId::of::<Q>())
            .and_then(|entry| entry.downcast_ref::<Arc<dyn QueryHandler<Q>>>())
            .ok_or_else(|| Error::NoHandler {
                kind: HandlerKind::Query,
                type_name: Q::NAME.to_string(),
            })?;
        handler
            .handle(query)
            .instrument(tracing::debug_span!("query", name = Q::NAME))
            .await
    }

    fn command_handler<C: Command>(&self) -> Result<&Arc<dyn CommandHandler<C>>> {
        self.inner
            .commands
            .get(&TypeId::of::<C>())
            .and_then(|entry| entry.downcast_ref::<Arc<dyn CommandHandler<C>>>())
            .ok_or_else(|| Error::NoHandler {
                kind: HandlerKind::Command,
                type_name: C::NAME.to_string(),
            })
    }

    /// Whether a handler for command `C` is registered.
    pub fn handles_command<C: Command>(&self) -> bool {
        self.inner.commands.contains_key(&TypeId::of::<C>())
    }

    /// Whether a handler for query `Q` is registered.
    pub fn handles_query<Q: Query>(&self) -> bool {
        self.inner.queries.contains_key(&TypeId::of::<Q>())
    }

    /// Opens a unit of work on the bus's store, routed through the bus's domain-event handlers
    /// and mappers: for work outside a command handler (a synchronous service, a test).
    pub async fn unit_of_work(&self) -> Result<UnitOfWork> {
        UnitOfWork::begin(&*self.inner.store, self.inner.router.clone()).await
    }

    /// [`unit_of_work`](Self::unit_of_work) inside a `begin` span, for the handlers' own units
    /// of work: beginning may wait (for a pooled connection, or for SQLite's one writer), and
    /// the span tells that wait apart from the handling in timings.
    pub(crate) async fn begin_timed(&self) -> Result<UnitOfWork> {
        self.unit_of_work()
            .instrument(tracing::debug_span!("begin"))
            .await
    }

    /// The store units of work run on.
    pub fn store(&self) -> &Arc<dyn TransactionalStore> {
        &self.inner.store
    }

    /// The dependencies the application provided.
    pub fn resources(&self) -> &Resources {
        &self.inner.resources
    }

    /// The service name written into produced envelopes.
    pub fn service_name(&self) -> &str {
        self.inner.router.service_name()
    }

    /// The handler of `message`'s type for `subscription`: the one registered for that
    /// subscription, else the one for every subscription, else [`Error::NoHandler`].
    pub(crate) fn message_handler(
        &self,
        subscription: &str,
        message: &Message,
    ) -> Result<&Arc<dyn ErasedMessageHandler>> {
        let message_type = message.envelope.message_type.as_str();
        self.inner
            .scoped
            .get(&(subscription.to_string(), message_type.to_string()))
            .or_else(|| self.inner.messages.get(message_type))
            .ok_or_else(|| Error::NoHandler {
                kind: HandlerKind::Message,
                type_name: message.envelope.message_type.clone(),
            })
    }
}
