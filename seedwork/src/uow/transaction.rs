use std::any::Any;

use async_trait::async_trait;

use crate::error::Result;
use crate::messaging::Message;

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

    /// Makes everything durable.
    async fn commit(self: Box<Self>) -> Result<()>;

    /// Discards everything.
    async fn rollback(self: Box<Self>) -> Result<()>;

    /// For downcasting to the backend's concrete transaction.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// Whose turn comes first when writers queue for a store that writes one transaction at a
/// time (SQLite).
///
/// Work that drains what the system has already accepted — consumers handling messages,
/// relays — goes before new requests, so that under overload the backlog does not grow
/// without bound while new requests keep winning the writer: requests wait a little longer
/// instead, which is the back-pressure a caller can see. A store may bound how many backlog
/// turns pass a waiting request, so requests are never starved. Stores without a single
/// writer (PostgreSQL, memory) ignore it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Priority {
    /// New work: an HTTP request's command, a CLI call. The default.
    #[default]
    Request,
    /// Draining accepted work: message handlers, relays, settlements.
    Backlog,
}

/// A store that can open transactions.
#[async_trait]
pub trait TransactionalStore: Send + Sync + 'static {
    /// Opens a transaction. Backends serialise writers as their database does (SQLite takes its
    /// write lock here, with `BEGIN IMMEDIATE`).
    async fn begin(&self) -> Result<Box<dyn Transaction>>;

    /// Opens a transaction whose wait for the writer, if the store has to queue writers, is
    /// ordered by `priority`. The default ignores the priority.
    async fn begin_with(&self, priority: Priority) -> Result<Box<dyn Transaction>> {
        let _ = priority;
        self.begin().await
    }
}
