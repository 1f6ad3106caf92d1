use std::future::Future;

use tracing::Instrument;

use super::Bus;
use crate::error::{Error, HandlerKind, Result};
use crate::messaging::{Consumer, Message};

/// What happened to a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageOutcome {
    /// Its handler ran and its effects committed with the inbox entry.
    Handled,
    /// The inbox had already seen it: nothing was done.
    Duplicate,
}

impl Bus {
    /// Handles one received message for the subscription `consumer`: in one unit of work,
    /// records its id in the inbox, runs the registered [`MessageHandler`](super::MessageHandler)
    /// for its type, and commits. A message already in the inbox is skipped.
    pub async fn handle_message(
        &self,
        consumer: &str,
        message: &Message,
    ) -> Result<MessageOutcome> {
        let span = tracing::debug_span!(
            "message",
            consumer,
            message_type = %message.envelope.message_type,
            message_id = %message.envelope.id,
            correlation_id = message.correlation_id(),
        );
        async {
            let handler = self
                .message_handler(&message.envelope.message_type)
                .ok_or_else(|| Error::NoHandler {
                    kind: HandlerKind::Message,
                    type_name: message.envelope.message_type.clone(),
                })?;
            let mut uow = self.unit_of_work().await?;
            if let Some(correlation_id) = message.correlation_id() {
                uow.set_correlation_id(correlation_id);
            }
            if !uow.record_inbox(consumer, message.id()).await? {
                uow.rollback().await?;
                return Ok(MessageOutcome::Duplicate);
            }
            match handler.handle(message, &mut uow).await {
                Ok(()) => {
                    uow.commit().await?;
                    Ok(MessageOutcome::Handled)
                }
                Err(error) => {
                    if let Err(rollback_error) = uow.rollback().await {
                        tracing::warn!(%rollback_error, "rollback after a failed message failed");
                    }
                    Err(error)
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Receives from `consumer` until `shutdown` completes, handling each message with
    /// [`handle_message`](Self::handle_message): acknowledged on success or duplicate,
    /// negatively acknowledged on failure (so it is redelivered with backoff and, after the
    /// subscription's maximum, dead-lettered).
    ///
    /// A failed ack or nack is logged and the loop goes on: the broker delivers the message
    /// again and the inbox recognises it. Returns `Err` only if `receive` fails (the consumer
    /// itself is broken); supervise and resubscribe.
    pub async fn consume(
        &self,
        mut consumer: Box<dyn Consumer>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let subscription = consumer.options().subscription.clone();
        tokio::pin!(shutdown);
        loop {
            let delivery = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                delivery = consumer.receive() => delivery?,
            };
            let settled = match self.handle_message(&subscription, &delivery.message).await {
                Ok(_) => consumer.ack(&delivery).await,
                Err(error) => {
                    tracing::warn!(
                        %error,
                        subscription = %subscription,
                        message_id = %delivery.message.envelope.id,
                        attempt = delivery.attempt,
                        "message handling failed; it will be redelivered or dead-lettered"
                    );
                    consumer.nack(&delivery).await
                }
            };
            if let Err(error) = settled {
                // The broker will deliver the message again (a reconnected consumer cannot
                // settle what the old connection received); the inbox absorbs the repeat.
                tracing::warn!(
                    %error,
                    subscription = %subscription,
                    message_id = %delivery.message.envelope.id,
                    "settling the message failed; it will come back"
                );
            }
        }
    }
}
