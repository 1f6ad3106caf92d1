use async_trait::async_trait;

use crate::error::Result;
use crate::messaging::{Envelope, IntegrationMessage};
use crate::uow::UnitOfWork;

/// Handles an integration message received from the broker (an event from another service, or
/// an integration command such as `ComandoCrearReserva`).
///
/// [`Bus::consume`](super::Bus::consume) runs it in a unit of work that also records the
/// message id in the inbox, so a redelivered message has its effect once.
#[async_trait]
pub trait MessageHandler<M: IntegrationMessage>: Send + Sync + 'static {
    /// Handles the decoded message.
    async fn handle(&self, message: Envelope<M>, uow: &mut UnitOfWork) -> Result<()>;
}
