use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use super::bus::{Bus, BusParts, ErasedMessageHandler, TypedMessageHandler};
use super::registry::registrations;
use super::router::{erase_mapper, ErasedDomainHandler, ErasedMapper, TypedDomainHandler};
use super::type_map::TypeMap;
use super::{BuildError, BuildProblem};
use super::{
    Command, CommandHandler, DomainEventHandler, EventRouter, FromResources, MessageHandler, Query,
    QueryHandler, Resources,
};
use crate::domain::DomainEvent;
use crate::error::HandlerKind;
use crate::messaging::IntegrationMessage;
use crate::uow::TransactionalStore;

struct Entry {
    key: TypeId,
    type_name: String,
    handler_name: String,
    /// `Arc<dyn CommandHandler<C>>` or `Arc<dyn QueryHandler<Q>>`.
    handler: Box<dyn Any + Send + Sync>,
}

struct MessageEntry {
    /// The subscription the handler serves; `None`: every subscription.
    scope: Option<String>,
    message_type: &'static str,
    handler_name: String,
    handler: Arc<dyn ErasedMessageHandler>,
}

/// Builds a [`Bus`]: the application's dependencies, its store, and its handlers, added
/// explicitly or collected from the attribute macros with [`registered`](Self::registered).
///
/// A store is required: the bus never picks one for the application, so a forgotten
/// [`store`](Self::store) is a build error rather than a silently non-durable bus. Problems (no
/// store, two handlers for one command, a dependency nobody provided) are collected and all
/// reported together by [`build`](Self::build), naming the handlers involved.
pub struct BusBuilder {
    resources: Resources,
    store: Option<Arc<dyn TransactionalStore>>,
    service_name: String,
    include_registered: bool,
    commands: Vec<Entry>,
    queries: Vec<Entry>,
    messages: Vec<MessageEntry>,
    domain_handlers: Vec<(TypeId, Arc<dyn ErasedDomainHandler>)>,
    mappers: Vec<(TypeId, ErasedMapper)>,
    problems: Vec<BuildProblem>,
}

impl Default for BusBuilder {
    fn default() -> Self {
        BusBuilder::new()
    }
}

impl BusBuilder {
    /// An empty builder; service name `"seedwork"`.
    pub fn new() -> Self {
        BusBuilder {
            resources: Resources::new(),
            store: None,
            service_name: "seedwork".to_string(),
            include_registered: false,
            commands: Vec::new(),
            queries: Vec::new(),
            messages: Vec::new(),
            domain_handlers: Vec::new(),
            mappers: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// The service name written into the envelopes of the messages this bus produces.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// The store units of work run on (required). A durable store comes from an adapter such as
    /// `seedwork-sqlx`; tests and an explicit in-memory mode pass `seedwork::memory::MemoryStore`.
    pub fn store(mut self, store: Arc<dyn TransactionalStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Provides a dependency by value; handlers receive it as `Dep<T>`.
    pub fn provide<T: Send + Sync + 'static>(self, value: T) -> Self {
        self.provide_arc(Arc::new(value))
    }

    /// Provides a shared dependency, possibly a trait object (`Arc<dyn Repository<A>>`);
    /// handlers receive it as `Dep<T>`.
    pub fn provide_arc<T: ?Sized + Send + Sync + 'static>(mut self, value: Arc<T>) -> Self {
        self.resources.insert(value);
        self
    }

    /// Includes every handler registered with the attribute macros in the crates linked into
    /// this binary.
    pub fn registered(mut self) -> Self {
        self.include_registered = true;
        self
    }

    /// Adds the handler of command `C`.
    pub fn command<C: Command>(mut self, handler: impl CommandHandler<C>) -> Self {
        let name = handler_type_name(&handler);
        self.add_command_handler::<C>(name, Arc::new(handler));
        self
    }

    /// Adds the handler of query `Q`.
    pub fn query<Q: Query>(mut self, handler: impl QueryHandler<Q>) -> Self {
        let name = handler_type_name(&handler);
        self.add_query_handler::<Q>(name, Arc::new(handler));
        self
    }

    /// Adds a handler of domain event `E` (any number per event type).
    pub fn on_event<E: DomainEvent>(mut self, handler: impl DomainEventHandler<E>) -> Self {
        self.add_domain_event_handler::<E>(handler);
        self
    }

    /// Adds the handler of integration message `M` (consumed with
    /// [`Bus::consume`](super::Bus::consume)), for every subscription.
    pub fn on_message<M: IntegrationMessage>(mut self, handler: impl MessageHandler<M>) -> Self {
        let name = handler_type_name(&handler);
        self.add_message_handler::<M>(name, handler);
        self
    }

    /// Adds a handler of integration message `M` for the subscription `subscription` only: a
    /// message received through it goes to this handler, ahead of one added with
    /// [`on_message`](Self::on_message). Two parts of one application can so react each in its
    /// own way to the same message (a notifier and a saga both following a reservation's
    /// events), each through its own subscription. One handler per type and subscription.
    pub fn on_message_from<M: IntegrationMessage>(
        mut self,
        subscription: impl Into<String>,
        handler: impl MessageHandler<M>,
    ) -> Self {
        let name = handler_type_name(&handler);
        self.add_scoped_message_handler::<M>(Some(subscription.into()), name, handler);
        self
    }

    /// Publishes every committed `E` as the integration message `mapper` makes of it: the
    /// message goes to the outbox in the same transaction (the Python `<Evento>Integracion`).
    pub fn publish<E, M, F>(mut self, mapper: F) -> Self
    where
        E: DomainEvent,
        M: IntegrationMessage,
        F: Fn(&E) -> M + Send + Sync + 'static,
    {
        self.add_integration_mapper::<E, M, F>(mapper);
        self
    }

    /// Records a problem found while adding to the builder, for [`build`](Self::build) to
    /// report with the others.
    pub(crate) fn add_problem(&mut self, problem: BuildProblem) {
        self.problems.push(problem);
    }

    #[doc(hidden)]
    /// Extracts a dependency for `handler` (used by the registration macros).
    pub fn extract<T: FromResources>(&self, handler: &str) -> Result<T, BuildProblem> {
        T::from_resources(&self.resources, handler)
    }

    #[doc(hidden)]
    /// The dependencies provided so far.
    pub fn resources(&self) -> &Resources {
        &self.resources
    }

    #[doc(hidden)]
    /// Adds a command handler under `name` (the form the macros use).
    pub fn add_command_handler<C: Command>(
        &mut self,
        name: impl Into<String>,
        handler: Arc<dyn CommandHandler<C>>,
    ) {
        self.commands.push(Entry {
            key: TypeId::of::<C>(),
            type_name: C::NAME.to_string(),
            handler_name: name.into(),
            handler: Box::new(handler),
        });
    }

    #[doc(hidden)]
    /// Adds a query handler under `name`.
    pub fn add_query_handler<Q: Query>(
        &mut self,
        name: impl Into<String>,
        handler: Arc<dyn QueryHandler<Q>>,
    ) {
        self.queries.push(Entry {
            key: TypeId::of::<Q>(),
            type_name: Q::NAME.to_string(),
            handler_name: name.into(),
            handler: Box::new(handler),
        });
    }

    #[doc(hidden)]
    /// Adds a domain-event handler.
    pub fn add_domain_event_handler<E: DomainEvent>(
        &mut self,
        handler: impl DomainEventHandler<E>,
    ) {
        self.domain_handlers.push((
            TypeId::of::<E>(),
            Arc::new(TypedDomainHandler::<E, _>::new(handler)),
        ));
    }

    #[doc(hidden)]
    /// Adds an integration-message handler under `name`.
    pub fn add_message_handler<M: IntegrationMessage>(
        &mut self,
        name: impl Into<String>,
        handler: impl MessageHandler<M>,
    ) {
        self.add_scoped_message_handler::<M>(None, name, handler);
    }

    pub(crate) fn add_scoped_message_handler<M: IntegrationMessage>(
        &mut self,
        scope: Option<String>,
        name: impl Into<String>,
        handler: impl MessageHandler<M>,
    ) {
        // An enum of several message types is handled for each of them.
        let handler_name = name.into();
        let handler: Arc<TypedMessageHandler<M, _>> =
            Arc::new(TypedMessageHandler::<M, _>::new(handler));
        for message_type in M::TYPES {
            self.messages.push(MessageEntry {
                scope: scope.clone(),
                message_type,
                handler_name: handler_name.clone(),
                handler: handler.clone(),
            });
        }
    }

    #[doc(hidden)]
    /// Adds a domain-event → integration-message mapper.
    pub fn add_integration_mapper<E, M, F>(&mut self, mapper: F)
    where
        E: DomainEvent,
        M: IntegrationMessage,
        F: Fn(&E) -> M + Send + Sync + 'static,
    {
        self.mappers
            .push((TypeId::of::<E>(), erase_mapper::<E, M, F>(mapper)));
    }

    /// Checks the configuration and builds the bus, or reports every problem found.
    pub fn build(mut self) -> Result<Bus, BuildError> {
        if self.include_registered {
            for registration in registrations() {
                if let Err(problem) = (registration.register)(&mut self) {
                    self.problems.push(problem);
                }
            }
        }
        let mut problems = self.problems;
        if self.store.is_none() {
            problems.insert(0, BuildProblem::MissingStore);
        }
        let commands = index_unique(self.commands, HandlerKind::Command, &mut problems);
        let queries = index_unique(self.queries, HandlerKind::Query, &mut problems);
        type Named = (String, Arc<dyn ErasedMessageHandler>);
        let mut messages: HashMap<(Option<String>, String), Named> = HashMap::new();
        for entry in self.messages {
            let key = (entry.scope, entry.message_type.to_string());
            if let Some((first, _)) = messages.get(&key) {
                problems.push(BuildProblem::DuplicateHandler {
                    kind: HandlerKind::Message,
                    type_name: match &key.0 {
                        Some(scope) => format!("{} (subscription `{scope}`)", key.1),
                        None => key.1,
                    },
                    first: first.clone(),
                    second: entry.handler_name,
                });
                continue;
            }
            messages.insert(key, (entry.handler_name, entry.handler));
        }
        // A missing store is among the problems, so an empty list means there is a store.
        let store = match self.store {
            Some(store) if problems.is_empty() => store,
            _ => return Err(BuildError::new(problems)),
        };
        let mut handlers: TypeMap<Vec<Arc<dyn ErasedDomainHandler>>> = TypeMap::default();
        for (key, handler) in self.domain_handlers {
            handlers.entry(key).or_default().push(handler);
        }
        let mut mappers: TypeMap<Vec<ErasedMapper>> = TypeMap::default();
        for (key, mapper) in self.mappers {
            mappers.entry(key).or_default().push(mapper);
        }
        let mut global = HashMap::new();
        let mut scoped = HashMap::new();
        for ((scope, message_type), (_, handler)) in messages {
            match scope {
                Some(scope) => scoped.insert((scope, message_type), handler),
                None => global.insert(message_type, handler),
            };
        }
        Ok(Bus::from_parts(BusParts {
            commands,
            queries,
            messages: global,
            scoped,
            router: Arc::new(EventRouter::new(self.service_name, handlers, mappers)),
            store,
            resources: self.resources,
        }))
    }
}

fn handler_type_name<H>(_: &H) -> String {
    std::any::type_name::<H>().to_string()
}

/// Indexes handlers by message type; a second handler for a type is a problem, and the first
/// one stays.
fn index_unique(
    entries: Vec<Entry>,
    kind: HandlerKind,
    problems: &mut Vec<BuildProblem>,
) -> TypeMap<Box<dyn Any + Send + Sync>> {
    let mut names: HashMap<TypeId, String> = HashMap::new();
    let mut index = TypeMap::default();
    for entry in entries {
        if let Some(first) = names.get(&entry.key) {
            problems.push(BuildProblem::DuplicateHandler {
                kind,
                type_name: entry.type_name,
                first: first.clone(),
                second: entry.handler_name,
            });
            continue;
        }
        names.insert(entry.key, entry.handler_name);
        index.insert(entry.key, entry.handler);
    }
    index
}
