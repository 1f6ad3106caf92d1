use async_trait::async_trait;

use super::{PendingEvent, UnitOfWork};
use crate::error::Result;
use crate::messaging::Message;

/// What a [`UnitOfWork`] asks at commit about each domain event: who handles it in-process and
/// which integration messages it becomes.
///
/// The unit of work defines this port and the application layer implements it (the bus hands
/// its event routing to every unit of work it opens), so the commit protocol knows nothing of
/// buses or handler registries. [`NoDispatch`] routes nothing: a unit of work that only
/// commits.
#[async_trait]
pub trait EventDispatch: Send + Sync {
    /// The service name written into the envelopes of messages this unit of work produces.
    fn service_name(&self) -> &str;

    /// Runs every in-process handler of `event`, in order, inside `uow`. Handlers may change
    /// more aggregates and raise more events, which the unit of work dispatches in turn.
    async fn handle(&self, event: &PendingEvent, uow: &mut UnitOfWork) -> Result<()>;

    /// Appends to `out` the integration messages `event` maps to. A message without a key of its
    /// own must be keyed by the aggregate id, so that a relay keeps each aggregate's messages in
    /// order.
    fn map_to_messages(&self, event: &PendingEvent, out: &mut Vec<Message>) -> Result<()>;
}

/// An [`EventDispatch`] with no handlers and no mappings.
#[derive(Debug, Clone, Default)]
pub struct NoDispatch {
    /// The service name for the envelopes of enqueued messages.
    pub service_name: String,
}

#[async_trait]
impl EventDispatch for NoDispatch {
    fn service_name(&self) -> &str {
        &self.service_name
    }

    async fn handle(&self, _event: &PendingEvent, _uow: &mut UnitOfWork) -> Result<()> {
        Ok(())
    }

    fn map_to_messages(&self, _event: &PendingEvent, _out: &mut Vec<Message>) -> Result<()> {
        Ok(())
    }
}
