use async_trait::async_trait;

use crate::domain::DomainEvent;
use crate::error::Result;
use crate::uow::UnitOfWork;

/// Reacts to a domain event inside the unit of work that raised it, before it commits: the way
/// another module continues the business transaction (the Python `<Evento>Dominio` signal
/// handlers). Any number of handlers may react to one event type; if one fails, the whole
/// unit of work rolls back.
#[async_trait]
pub trait DomainEventHandler<E: DomainEvent>: Send + Sync + 'static {
    /// Reacts to `event`; changes made through `uow` commit with the original change.
    async fn handle(&self, event: &E, uow: &mut UnitOfWork) -> Result<()>;
}
