use async_trait::async_trait;

use super::Message;
use crate::error::Result;

/// Sends messages to a broker (`Despachador`).
///
/// Application code rarely calls it directly: integration events go to the outbox inside the
/// unit of work, and the [`OutboxRelay`](super::OutboxRelay) publishes them once committed.
/// `publish` returns only when the broker has accepted the message (or failed): a success means
/// the message is durable on the broker's side.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Sends one message to `message.topic`.
    async fn publish(&self, message: &Message) -> Result<()>;
}

#[async_trait]
impl<P: Publisher + ?Sized> Publisher for std::sync::Arc<P> {
    async fn publish(&self, message: &Message) -> Result<()> {
        (**self).publish(message).await
    }
}
