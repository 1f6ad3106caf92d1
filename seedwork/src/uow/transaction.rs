use std::any::Any;

use async_trait::async_trait;

use crate::error::Result;
use crate::messaging::{Message, TransactionalAck};

/// A backend's open transaction, as the [`UnitOfWork`](super::UnitOfWork) drives it.
///
/// Repositories of the same backend reach the concrete type through
/// [`UnitOfWork::transaction`](super::UnitOfWork::transaction) to run their statements in it.
/// Dropping a transaction without committing must roll it back.
#[async_trait]
pub trait Transaction: Any + Send {
    /// Marks a savepoint named `name`.
    async fn savepoint(&mut self, name: &str) -> Result<()>;

    /// Undoes everything done since the savepoint `name`, keeping the savepoint.
    async fn rollback_to_savepoint(&mut self, name: &str) -> Result<()>;

    /// Writes messages to the outbox, in order, as part of this transaction.
    async fn append_outbox(&mut self, messages: Vec<Message>) -> Result<()>;

    /// Records that `consumer` processed `message_id`. Returns `false` if it already had (the
    /// inbox): the caller then skips the message.
    async fn record_inbox(&mut self, consumer: &str, message_id: &str) -> Result<bool>;

    /// Records that `consumer` processed each of `message_ids`, as
    /// [`record_inbox`](Self::record_inbox) does each in turn: one answer per id, `false` for
    /// an id the inbox already had or that appears earlier in the list.
    ///
    /// The default records them one by one; a backend whose statements cost a round trip
    /// each writes them together (a consumer's batch records hundreds at once).
    async fn record_inbox_many(
        &mut self,
        consumer: &str,
        message_ids: &[&str],
    ) -> Result<Vec<bool>> {
        let mut new = Vec::with_capacity(message_ids.len());
        for message_id in message_ids {
            new.push(self.record_inbox(consumer, message_id).await?);
        }
        Ok(new)
    }

    /// Writes a consumer's acknowledgements in this transaction, so that they commit (or roll
    /// back) with it; `false` if this transaction cannot carry them (another backend, or a
    /// broker outside this store's database): the caller then acknowledges the usual way
    /// after the commit. The default is `false`.
    ///
    /// An acknowledgement whose delivery the consumer no longer holds (its lease ran out and
    /// the message went to another consumer) is carried as a no-op, as a late `ack` would be:
    /// that delivery is handled again, which at-least-once delivery allows.
    async fn acknowledge(&mut self, acknowledgements: &TransactionalAck) -> Result<bool> {
        let _ = acknowledgements;
        Ok(false)
    }

    /// Makes everything durable.
    async fn commit(self: Box<Self>) -> Result<()>;

    /// Discards everything.
    async fn rollback(self: Box<Self>) -> Result<()>;

    /// For downcasting to the backend's concrete transaction.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// A store that can open transactions.
#[async_trait]
pub trait TransactionalStore: Send + Sync + 'static {
    /// Opens a transaction. Backends serialise writers as their database does (SQLite takes its
    /// write lock here, with `BEGIN IMMEDIATE`).
    async fn begin(&self) -> Result<Box<dyn Transaction>>;
}
