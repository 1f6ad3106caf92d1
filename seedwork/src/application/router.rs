use std::any::{Any, TypeId};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use super::type_map::TypeMap;
use super::{BoxFuture, DomainEventHandler};
use crate::domain::DomainEvent;
use crate::error::Result;
use crate::messaging::{IntegrationMessage, Message};
use crate::uow::{EventDispatch, PendingEvent, UnitOfWork};

/// A domain-event handler with its event type erased, as the router stores it.
pub(crate) trait ErasedDomainHandler: Send + Sync {
    fn handle<'a>(
        &'a self,
        event: &'a dyn DomainEvent,
        route: Route,
        uow: &'a mut UnitOfWork,
    ) -> BoxFuture<'a, Result<()>>;
}

pub(crate) struct TypedDomainHandler<E, H> {
    handler: H,
    _event: PhantomData<fn(E)>,
}

impl<E, H> TypedDomainHandler<E, H> {
    pub(crate) fn new(handler: H) -> Self {
        TypedDomainHandler {
            handler,
            _event: PhantomData,
        }
    }
}

impl<E: DomainEvent, H: DomainEventHandler<E>> ErasedDomainHandler for TypedDomainHandler<E, H> {
    fn handle<'a>(
        &'a self,
        event: &'a dyn DomainEvent,
        route: Route,
        uow: &'a mut UnitOfWork,
    ) -> BoxFuture<'a, Result<()>> {
        match route.of(event).downcast_ref::<E>() {
            Some(event) => self.handler.handle(event, uow),
            // The router files handlers under the event's TypeId, so this cannot be reached;
            // answering Ok keeps a routing bug from becoming a panic.
            None => Box::pin(async { Ok(()) }),
        }
    }
}

/// Turns one domain event into an integration message, with its type erased.
pub(crate) type ErasedMapper = Arc<dyn Fn(&dyn Any, &str) -> Option<Result<Message>> + Send + Sync>;

/// Builds the erased form of a mapper `Fn(&E) -> M`.
pub(crate) fn erase_mapper<E, M, F>(mapper: F) -> ErasedMapper
where
    E: DomainEvent,
    M: IntegrationMessage,
    F: Fn(&E) -> M + Send + Sync + 'static,
{
    Arc::new(move |event: &dyn Any, service_name: &str| {
        let event = event.downcast_ref::<E>()?;
        Some(Message::encode(&mapper(event), service_name))
    })
}

/// Who reacts to each domain event type at commit: the domain-event handlers, and the mappers
/// that turn it into integration messages for the outbox. Built by the
/// [`BusBuilder`](super::BusBuilder), handed to each unit of work as its [`EventDispatch`].
pub(crate) struct EventRouter {
    service_name: String,
    handlers: TypeMap<Vec<Arc<dyn ErasedDomainHandler>>>,
    mappers: TypeMap<Vec<ErasedMapper>>,
}

impl fmt::Debug for EventRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventRouter")
            .field("service_name", &self.service_name)
            .field("event_types_handled", &self.handlers.len())
            .field("event_types_mapped", &self.mappers.len())
            .finish()
    }
}

impl EventRouter {
    pub(crate) fn new(
        service_name: String,
        handlers: TypeMap<Vec<Arc<dyn ErasedDomainHandler>>>,
        mappers: TypeMap<Vec<ErasedMapper>>,
    ) -> Self {
        EventRouter {
            service_name,
            handlers,
            mappers,
        }
    }
}

/// Which form of an event a handler or mapper is given: the event itself, or its
/// [`routed`](DomainEvent::routed) event (the variant inside an aggregate's event enum).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Route {
    Itself,
    Routed,
}

impl Route {
    fn of(self, event: &dyn DomainEvent) -> &dyn Any {
        match self {
            Route::Itself => event.as_any(),
            Route::Routed => event.routed(),
        }
    }
}

/// The forms an event is routed as, with their types: itself, and its routed event when that
/// is another.
fn routes(event: &dyn DomainEvent) -> impl Iterator<Item = (Route, TypeId)> {
    let itself = event.as_any().type_id();
    let routed = event.routed().type_id();
    std::iter::once((Route::Itself, itself))
        .chain((routed != itself).then_some((Route::Routed, routed)))
}

#[async_trait::async_trait]
impl EventDispatch for EventRouter {
    fn service_name(&self) -> &str {
        &self.service_name
    }

    async fn handle(&self, pending: &PendingEvent, uow: &mut UnitOfWork) -> Result<()> {
        for (route, type_id) in routes(&*pending.event) {
            let Some(handlers) = self.handlers.get(&type_id) else {
                continue;
            };
            for handler in handlers {
                handler.handle(&*pending.event, route, uow).await?;
            }
        }
        Ok(())
    }

    fn map_to_messages(&self, pending: &PendingEvent, out: &mut Vec<Message>) -> Result<()> {
        for (route, type_id) in routes(&*pending.event) {
            let Some(mappers) = self.mappers.get(&type_id) else {
                continue;
            };
            for mapper in mappers {
                if let Some(message) = mapper(route.of(&*pending.event), &self.service_name) {
                    let mut message = message?;
                    if message.key.is_none() {
                        message.key = Some(pending.aggregate_id.clone());
                    }
                    out.push(message);
                }
            }
        }
        Ok(())
    }
}
