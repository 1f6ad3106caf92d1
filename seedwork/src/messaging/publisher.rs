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

    /// Checks, with a real round trip where there is one, that the broker can be reached now:
    /// what a health check reports as "broker connected". An outage is
    /// [`Error::Unavailable`](crate::error::Error::Unavailable).
    ///
    /// The default answers `Ok`, which is right for a broker inside the process (reachable
    /// whenever the process runs); a networked broker overrides it.
    async fn check(&self) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl<P: Publisher + ?Sized> Publisher for std::sync::Arc<P> {
    async fn publish(&self, message: &Message) -> Result<()> {
        (**self).publish(message).await
    }

    async fn check(&self) -> Result<()> {
        (**self).check().await
    }
}
