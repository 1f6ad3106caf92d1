//! The transaction a unit of work runs on.

use std::any::Any;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use std::collections::BTreeSet;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::AssertSqlSafe;
use tokio::sync::Notify;

use seedwork::domain::ChangeTracker;
use seedwork::messaging::{Message, TransactionalAck};
use seedwork::uow::Transaction;
use seedwork::Result;

use crate::dialect::{column, on, statement, Bind, Connection, Dialect, Tx};
use crate::error::{Operation, SqlxError};
use crate::shared::{checked_savepoint_name, now_millis, rows};

/// An open transaction on dialect `D`. Repositories reach it with
/// `uow.transaction::<SqliteTransaction>()` (or
/// [`PostgresTransaction`](crate::PostgresTransaction)) and run their statements on
/// [`connection`](Self::connection).
pub struct SqlTransaction<D: Dialect> {
    tx: Tx<D>,
    signal: Arc<Notify>,
    wrote_outbox: bool,
    /// Events appended in this transaction so far: the next one's rank, where positions are
    /// made of the transaction's id and a rank (`EventAppend::PerTransaction`). Never lowered (a
    /// savepoint rolled back leaves a gap, never a repeat).
    pub(crate) events_appended: u64,
    /// The transport the outbox goes straight into, and the topics appended to (whose
    /// consumers are woken after the commit).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    direct: Option<(crate::transport::Transport, BTreeSet<String>)>,
}

impl<D: Dialect> fmt::Debug for SqlTransaction<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlTransaction")
            .field("wrote_outbox", &self.wrote_outbox)
            .finish_non_exhaustive()
    }
}

impl<D: Dialect> SqlTransaction<D> {
    pub(crate) fn new(tx: Tx<D>, signal: Arc<Notify>) -> Self {
        SqlTransaction {
            tx,
            signal,
            wrote_outbox: false,
            events_appended: 0,
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            direct: None,
        }
    }

    /// Appends the outbox to `transport`'s log instead (see
    /// [`SqlStore::direct_transport`](crate::SqlStore::direct_transport)).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn delivering_to(mut self, transport: Option<crate::transport::Transport>) -> Self {
        self.direct = transport.map(|transport| (transport, BTreeSet::new()));
        self
    }

    /// The connection the transaction runs on: execute your statements here to make them part
    /// of the unit of work.
    pub fn connection(&mut self) -> &mut Connection<D> {
        &mut self.tx
    }

    /// Runs savepoint SQL (names cannot be bound; `name` was checked).
    async fn savepoint_statement(&mut self, sql: String) -> Result<(), sqlx::Error> {
        sqlx::query::<D::Db>(AssertSqlSafe(sql))
            .execute(on::<D>(&mut self.tx))
            .await?;
        Ok(())
    }

    /// Reborrows the open transaction of a unit of work (see [`ChangeTracker::transaction`]).
    pub(crate) fn of(uow: &mut dyn ChangeTracker) -> Result<&mut Self> {
        uow.transaction::<Self>()
    }

    pub(crate) fn executor(&mut self) -> impl sqlx::Executor<'_, Database = D::Db> {
        on::<D>(&mut self.tx)
    }
}

#[async_trait]
impl<D: Dialect> Transaction for SqlTransaction<D> {
    async fn savepoint(&mut self, name: &str) -> Result<()> {
        let name = checked_savepoint_name(name)?;
        self.savepoint_statement(format!("SAVEPOINT {name}"))
            .await
            .map_err(|source| SqlxError::Savepoint {
                name: name.to_string(),
                source,
            })?;
        Ok(())
    }

    async fn rollback_to_savepoint(&mut self, name: &str) -> Result<()> {
        let name = checked_savepoint_name(name)?;
        self.savepoint_statement(format!("ROLLBACK TO SAVEPOINT {name}"))
            .await
            .map_err(|source| SqlxError::RollbackToSavepoint {
                name: name.to_string(),
                source,
            })?;
        Ok(())
    }

    async fn append_outbox(&mut self, messages: Vec<Message>) -> Result<()> {
        let now = now_millis();
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        if let Some((_, topics)) = &mut self.direct {
            let appended =
                crate::transport::direct::append::<D>(&mut self.tx, &messages, now).await?;
            topics.extend(appended);
            return Ok(());
        }
        for message in &messages {
            let columns = rows::encode(message)?;
            statement::<D>(D::SQL.insert_outbox)
                .arg(columns.message_id)
                .arg(columns.topic)
                .arg(columns.key)
                .arg(columns.envelope)
                .arg(columns.properties)
                .arg(now)
                .execute(on::<D>(&mut self.tx))
                .await
                .map_err(SqlxError::statement(Operation::OutboxAppend))?;
        }
        self.wrote_outbox |= !messages.is_empty();
        Ok(())
    }

    async fn record_inbox(&mut self, consumer: &str, message_id: &str) -> Result<bool> {
        let done = statement::<D>(D::SQL.insert_inbox)
            .arg(consumer.to_string())
            .arg(message_id.to_string())
            .arg(now_millis())
            .execute(on::<D>(&mut self.tx))
            .await
            .map_err(SqlxError::statement(Operation::InboxInsert))?;
        Ok(D::rows_affected(&done) == 1)
    }

    /// One statement for the whole list, whatever its length.
    async fn record_inbox_many(
        &mut self,
        consumer: &str,
        message_ids: &[&str],
    ) -> Result<Vec<bool>> {
        let mut listed = HashSet::new();
        let distinct: Vec<String> = message_ids
            .iter()
            .filter(|id| listed.insert(**id))
            .map(|id| id.to_string())
            .collect();
        if distinct.is_empty() {
            return Ok(Vec::new());
        }
        let rows = statement::<D>(D::SQL.insert_inbox_many)
            .arg(consumer.to_string())
            .arg(D::keys(&distinct).map_err(SqlxError::list(Operation::InboxInsert))?)
            .arg(now_millis())
            .fetch_all(on::<D>(&mut self.tx))
            .await
            .map_err(SqlxError::statement(Operation::InboxInsert))?;
        let inserted = rows
            .iter()
            .map(|row| column::<D, String>(row, "message_id"))
            .collect::<Result<HashSet<_>, _>>()
            .map_err(SqlxError::statement(Operation::InboxInsert))?;
        let mut answered = HashSet::new();
        Ok(message_ids
            .iter()
            .map(|id| inserted.contains(*id) && answered.insert(*id))
            .collect())
    }

    /// Carries the acknowledgements of a consumer of this store's
    /// [`direct_transport`](crate::SqlStore::direct_transport): their rows are deleted in this
    /// transaction. Any other acknowledgements (another transport, another broker) are
    /// declined.
    async fn acknowledge(&mut self, acknowledgements: &TransactionalAck) -> Result<bool> {
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        if let Some((transport, _)) = &self.direct {
            return crate::transport::direct::acknowledge::<D>(
                &mut self.tx,
                transport,
                acknowledgements,
            )
            .await;
        }
        let _ = acknowledgements;
        Ok(false)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let SqlTransaction {
            tx,
            signal,
            wrote_outbox,
            events_appended: _,
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            direct,
        } = *self;
        tx.commit().await.map_err(SqlxError::Commit)?;
        if wrote_outbox {
            signal.notify_one();
        }
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        if let Some((transport, topics)) = direct {
            transport.wake_topics(&topics);
        }
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.tx.rollback().await.map_err(SqlxError::Rollback)?;
        Ok(())
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
