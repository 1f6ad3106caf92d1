//! The transaction a unit of work runs on.

use std::any::Any;
use std::borrow::Cow;
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

use crate::dialect::{column, on, statement, Bind, Connection, Dialect, ManualTx, Statement, Tx};
use crate::error::{Operation, SqlxError};
use crate::shared::commit_tail::{bind_arg, Arg, CommitTail, Failed, Queued};
use crate::shared::{checked_savepoint_name, now_millis, rows};

/// An open transaction on dialect `D`. Repositories reach it with
/// `uow.transaction::<SqliteTransaction>()` (or
/// [`PostgresTransaction`](crate::PostgresTransaction)) and run their statements on
/// [`connection`](Self::connection).
pub struct SqlTransaction<D: Dialect> {
    tx: Open<D>,
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

/// How the transaction was opened.
enum Open<D: Dialect> {
    /// sqlx's transaction: `BEGIN` and `COMMIT` are calls of their own (PostgreSQL, where each
    /// statement is a round trip anyway).
    Driver(Tx<D>),
    /// A connection this transaction begins and ends with its own statements
    /// ([`Dialect::BATCHES_STATEMENTS`]): `BEGIN IMMEDIATE` goes with the first statement when
    /// this code runs it (a consumer's inbox entry) and on its own otherwise; the writes the
    /// unit of work makes last wait in `tail` and go with `COMMIT`.
    Batching {
        tx: ManualTx<D>,
        begun: bool,
        tail: CommitTail<D>,
    },
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
        Self::opened(Open::Driver(tx), signal)
    }

    /// A transaction on `tx` that has not sent `BEGIN` yet (see [`Dialect::BATCHES_STATEMENTS`]).
    pub(crate) fn batching(tx: ManualTx<D>, signal: Arc<Notify>) -> Self {
        Self::opened(
            Open::Batching {
                tx,
                begun: false,
                tail: CommitTail::default(),
            },
            signal,
        )
    }

    fn opened(tx: Open<D>, signal: Arc<Notify>) -> Self {
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
    ///
    /// Asynchronous because on SQLite the transaction sends `BEGIN` with its first statement:
    /// if nothing has been sent yet, `BEGIN IMMEDIATE` is sent now (with whatever the unit of
    /// work queued to send with its commit), so that your statements run inside it.
    pub async fn connection(&mut self) -> Result<&mut Connection<D>> {
        self.ready().await?;
        Ok(self.raw_connection())
    }

    fn raw_connection(&mut self) -> &mut Connection<D> {
        match &mut self.tx {
            Open::Driver(tx) => tx,
            Open::Batching { tx, .. } => tx.connection(),
        }
    }

    /// Makes the connection ready for a statement of any kind: the transaction begun and
    /// nothing left queued (so that statements run in the order the unit of work made them).
    async fn ready(&mut self) -> Result<(), SqlxError> {
        let Open::Batching { tx, begun, tail } = &mut self.tx else {
            return Ok(());
        };
        if *begun && tail.is_empty() {
            return Ok(());
        }
        let first = (!*begun).then_some(D::BEGIN).flatten();
        // Counted as begun whatever happens: a failed call may have begun it.
        *begun = true;
        tail.send(tx.connection(), first, None)
            .await
            .map_err(|(failed, source)| match failed {
                Failed::Queued(operation) => SqlxError::statement(operation)(source),
                Failed::First | Failed::Last => SqlxError::Begin(source),
            })
    }

    /// The SQL of a statement that may be this transaction's first: on a batching dialect
    /// whose transaction has not begun (and has nothing queued), `BEGIN IMMEDIATE` and the
    /// statement in one call, and the transaction counts as begun. Otherwise the connection is
    /// made ready and the statement runs alone.
    async fn maybe_first(&mut self, sql: &'static str) -> Result<Cow<'static, str>, SqlxError> {
        if let Open::Batching { begun, tail, .. } = &mut self.tx {
            if let (false, true, Some(begin)) = (*begun, tail.is_empty(), D::BEGIN) {
                // Counted as begun whatever happens: a failed call may have begun it.
                *begun = true;
                return Ok(Cow::Owned(format!("{begin};\n{sql}")));
            }
        }
        self.ready().await?;
        Ok(Cow::Borrowed(sql))
    }

    /// Runs a write whose result nobody reads: queued for the commit on a batching dialect,
    /// run now otherwise.
    async fn write_last(&mut self, queued: Queued<D>) -> Result<(), SqlxError> {
        if let Open::Batching { tail, .. } = &mut self.tx {
            tail.push(queued);
            return Ok(());
        }
        let mut write = statement::<D>(queued.sql);
        for arg in queued.args {
            write = bind_arg::<D>(write, arg);
        }
        write
            .execute(on::<D>(self.raw_connection()))
            .await
            .map_err(SqlxError::statement(queued.operation))?;
        Ok(())
    }

    /// Runs savepoint SQL (names cannot be bound; `name` was checked).
    async fn savepoint_statement(&mut self, sql: String) -> Result<(), sqlx::Error> {
        sqlx::query::<D::Db>(AssertSqlSafe(sql))
            .execute(on::<D>(self.raw_connection()))
            .await?;
        Ok(())
    }

    /// Reborrows the open transaction of a unit of work (see [`ChangeTracker::transaction`]).
    pub(crate) fn of(uow: &mut dyn ChangeTracker) -> Result<&mut Self> {
        uow.transaction::<Self>()
    }

    /// A statement of this code's on `sql`, with the connection ready for it. When it is the
    /// transaction's first on a batching dialect, it carries `BEGIN IMMEDIATE` (one call for
    /// both): run a write built on it with [`execute`](Self::execute), which counts the rows
    /// the write changed and not `BEGIN`'s.
    pub(crate) async fn statement(
        &mut self,
        sql: &'static str,
    ) -> Result<Statement<'static, D::Db>, SqlxError> {
        let sql = self.maybe_first(sql).await?;
        Ok(sqlx::query(AssertSqlSafe(sql)))
    }

    /// The connection as an executor, for a statement from [`statement`](Self::statement).
    pub(crate) fn executor(&mut self) -> impl sqlx::Executor<'_, Database = D::Db> {
        on::<D>(self.raw_connection())
    }

    /// Runs a write from [`statement`](Self::statement); the rows it changed.
    pub(crate) async fn execute(
        &mut self,
        write: Statement<'static, D::Db>,
    ) -> Result<u64, sqlx::Error> {
        use futures_util::TryStreamExt;
        use sqlx::Executor;

        // With `BEGIN` in front, a call reports a result per statement; the write's is the last.
        let mut changed = 0;
        let mut results = on::<D>(self.raw_connection()).fetch_many(write);
        while let Some(result) = results.try_next().await? {
            if let sqlx::Either::Left(done) = result {
                changed = D::rows_affected(&done);
            }
        }
        Ok(changed)
    }
}

#[async_trait]
impl<D: Dialect> Transaction for SqlTransaction<D> {
    async fn savepoint(&mut self, name: &str) -> Result<()> {
        let name = checked_savepoint_name(name)?;
        self.ready().await?;
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
        self.ready().await?;
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
        if self.direct.is_some() {
            let appended = if D::BATCHES_STATEMENTS {
                let (appended, append) =
                    crate::transport::direct::append_statement::<D>(&messages, now)?;
                if let Some(append) = append {
                    self.write_last(append).await?;
                }
                appended
            } else {
                crate::transport::direct::append::<D>(self.raw_connection(), &messages, now).await?
            };
            if let Some((_, topics)) = &mut self.direct {
                topics.extend(appended);
            }
            return Ok(());
        }
        for message in &messages {
            let columns = rows::encode(message)?;
            self.write_last(Queued {
                sql: D::SQL.insert_outbox,
                args: vec![
                    Arg::Text(columns.message_id),
                    Arg::Text(columns.topic),
                    Arg::OptText(columns.key),
                    Arg::Text(columns.envelope),
                    Arg::Text(columns.properties),
                    Arg::Int(now),
                ],
                operation: Operation::OutboxAppend,
            })
            .await?;
        }
        self.wrote_outbox |= !messages.is_empty();
        Ok(())
    }

    /// The one-element case of [`record_inbox_many`](Self::record_inbox_many): its statement
    /// tells the new entries apart by what it returns, which holds when `BEGIN` goes with it
    /// (a call's count of changed rows would add up its statements').
    async fn record_inbox(&mut self, consumer: &str, message_id: &str) -> Result<bool> {
        let new = self.record_inbox_many(consumer, &[message_id]).await?;
        Ok(new.first().copied().unwrap_or(false))
    }

    /// One statement for the whole list, whatever its length (on SQLite, with `BEGIN` when it
    /// is the transaction's first).
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
        let keys = D::keys(&distinct).map_err(SqlxError::list(Operation::InboxInsert))?;
        let sql = self.maybe_first(D::SQL.insert_inbox_many).await?;
        let rows = sqlx::query::<D::Db>(AssertSqlSafe(sql))
            .arg(consumer.to_string())
            .arg(keys)
            .arg(now_millis())
            .fetch_all(on::<D>(self.raw_connection()))
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
    /// transaction (on SQLite, with its `COMMIT`). Any other acknowledgements (another
    /// transport, another broker) are declined.
    async fn acknowledge(&mut self, acknowledgements: &TransactionalAck) -> Result<bool> {
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        if let Some(transport) = self.direct.as_ref().map(|(transport, _)| transport.clone()) {
            if !D::BATCHES_STATEMENTS {
                return crate::transport::direct::acknowledge::<D>(
                    self.raw_connection(),
                    &transport,
                    acknowledgements,
                )
                .await;
            }
            return match crate::transport::direct::ack_statement::<D>(&transport, acknowledgements)?
            {
                None => Ok(false),
                Some(None) => Ok(true),
                Some(Some(delete)) => {
                    self.write_last(delete).await?;
                    Ok(true)
                }
            };
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
        match tx {
            Open::Driver(tx) => tx.commit().await.map_err(SqlxError::Commit)?,
            Open::Batching {
                mut tx,
                begun,
                mut tail,
            } => {
                if begun || !tail.is_empty() {
                    let first = (!begun).then_some(D::BEGIN).flatten();
                    // On failure `tx` is dropped unended: its connection is closed and SQLite
                    // rolls back whatever the transaction did.
                    tail.send(tx.connection(), first, Some("COMMIT"))
                        .await
                        .map_err(|(failed, source)| match failed {
                            Failed::First => SqlxError::Begin(source),
                            Failed::Queued(operation) => SqlxError::statement(operation)(source),
                            Failed::Last => SqlxError::Commit(source),
                        })?;
                }
                tx.ended();
            }
        }
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
        match self.tx {
            Open::Driver(tx) => tx.rollback().await.map_err(SqlxError::Rollback)?,
            Open::Batching { mut tx, begun, .. } => {
                // What was queued was never sent.
                if begun {
                    // On failure `tx` is dropped unended: its connection is closed, which
                    // rolls back as well.
                    sqlx::query::<D::Db>("ROLLBACK")
                        .execute(on::<D>(tx.connection()))
                        .await
                        .map_err(SqlxError::Rollback)?;
                }
                tx.ended();
            }
        }
        Ok(())
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
