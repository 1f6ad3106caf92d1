//! The store: a pool, transactions for the unit of work, and the outbox as the relay reads it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use seedwork::messaging::{
    InboxStore, OutboxEntry, OutboxLag, OutboxStore, ParkedEntry, PublishFailure,
};
use seedwork::uow::{Transaction, TransactionalStore};
use seedwork::{Error, Result};

use crate::dialect::{column, on, statement, Bind, Dialect, Tx};
use crate::error::{Operation, SqlxError};
use crate::shared::claim::{self, ScannedRow};
use crate::shared::writer_gate::{WriterGate, WriterStats};
use crate::shared::{int_param, millis, now_millis, rows};
use crate::transaction::SqlTransaction;

/// A transactional store with outbox and inbox on dialect `D`: the [`TransactionalStore`],
/// [`OutboxStore`] and [`InboxStore`] of `seedwork`. Use it by its backend's name,
/// [`SqliteStore`](crate::SqliteStore) or [`PostgresStore`](crate::PostgresStore).
///
/// Cheap to clone (it shares the pool). Create it with the backend's `connect` or `open`, or
/// from an existing pool with [`from_pool`](Self::from_pool); apply the shipped migrations with
/// [`migrate`](Self::migrate).
pub struct SqlStore<D: Dialect> {
    pool: sqlx::Pool<D::Db>,
    signal: Arc<Notify>,
    gate: WriterGate,
    /// The transport this store's outbox goes straight into (shared by every clone).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    direct: Arc<std::sync::OnceLock<crate::transport::Transport>>,
}

/// An outbox row's message columns as stored, before decoding: the claim and the parked listing
/// read the same columns, and a row whose envelope does not decode still has its sequence,
/// topic and key.
struct StoredMessage {
    sequence: u64,
    topic: String,
    key: Option<String>,
    envelope: String,
    properties: String,
}

impl StoredMessage {
    fn read<D: Dialect>(
        row: &crate::dialect::DbRow<D>,
        operation: Operation,
    ) -> Result<Self, SqlxError> {
        let read = |name| SqlxError::column(operation, name);
        let sequence: i64 = column::<D, _>(row, "sequence").map_err(read("sequence"))?;
        Ok(StoredMessage {
            sequence: u64::try_from(sequence).unwrap_or_default(),
            topic: column::<D, _>(row, "topic").map_err(read("topic"))?,
            key: column::<D, _>(row, "message_key").map_err(read("message_key"))?,
            envelope: column::<D, _>(row, "envelope").map_err(read("envelope"))?,
            properties: column::<D, _>(row, "properties").map_err(read("properties"))?,
        })
    }

    fn decode(&self) -> Result<seedwork::messaging::Message, SqlxError> {
        rows::decode(
            self.topic.clone(),
            self.key.clone(),
            &self.envelope,
            &self.properties,
        )
    }
}

impl<D: Dialect> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        SqlStore {
            pool: self.pool.clone(),
            signal: Arc::clone(&self.signal),
            gate: self.gate.clone(),
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            direct: Arc::clone(&self.direct),
        }
    }
}

impl<D: Dialect> fmt::Debug for SqlStore<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl<D: Dialect> SqlStore<D> {
    /// A store over an existing pool (configure it as `connect` does: see the backend docs).
    pub fn from_pool(pool: sqlx::Pool<D::Db>) -> Self {
        SqlStore {
            gate: D::writer_gate(&pool),
            pool,
            signal: Arc::new(Notify::new()),
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            direct: Arc::default(),
        }
    }

    /// The durable transport on this store's database, fed directly by the store's outbox.
    ///
    /// From this call on, every unit of work on this store (and on its clones) appends the
    /// messages it enqueues or maps from domain events to the transport's topic log — and to
    /// every subscription of their topics — inside its own transaction, instead of writing
    /// outbox rows for a relay to copy there later. The message exists exactly when the state
    /// change does, as with the outbox; what goes away is the relay's hop: its latency (it
    /// claims, appends in a transaction of its own, then marks the row published) and, on
    /// SQLite's single writer, those extra write transactions. The outbox stays empty, so an
    /// [`OutboxRelay`](seedwork::messaging::OutboxRelay) on this store has nothing to do and
    /// need not run; its `/health` lag stays zero.
    ///
    /// Use it when the transport is the application's broker. With another broker (Pulsar),
    /// keep the outbox and its relay. Order per key holds as with the relay: a unit of work
    /// appends when it commits, after any lock it took on the aggregate whose id is the key,
    /// so two changes of one aggregate append in the order they commit.
    ///
    /// The first call creates the transport with `settings`; later calls (on this store or a
    /// clone) return that same transport, and a warning is logged if they ask for other
    /// settings.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub fn direct_transport(
        &self,
        settings: crate::transport::TransportSettings,
    ) -> crate::transport::SqlTransport<D> {
        let core = self.direct.get_or_init(|| {
            crate::transport::Transport::on_pool::<D>(self.pool.clone(), settings.clone())
        });
        if *core.settings() != settings {
            tracing::warn!(
                kept = ?core.settings(),
                asked = ?settings,
                "the store already feeds a transport: its settings are kept"
            );
        }
        crate::transport::SqlTransport::from_core(core.clone())
    }

    /// Applies the migrations shipped with the crate (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        D::migrator()
            .run(&self.pool)
            .await
            .map_err(SqlxError::Migrate)?;
        Ok(())
    }

    /// The connection pool, for the application's own queries.
    pub fn pool(&self) -> &sqlx::Pool<D::Db> {
        &self.pool
    }

    /// How busy the database's one writer has been, on SQLite (see [`WriterStats`]): the
    /// totals of every store on the same file in this process. `None` on PostgreSQL, whose
    /// writers lock rows and do not take turns.
    pub fn writer_stats(&self) -> Option<WriterStats> {
        self.gate.stats()
    }

    /// Closes the pool: open transactions fail, new ones cannot start.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Runs a statement that changes rows on a pooled connection, outside any transaction.
    async fn execute(
        &self,
        operation: Operation,
        query: crate::dialect::Statement<'static, D::Db>,
    ) -> Result<u64, SqlxError> {
        let _turn = self
            .gate
            .enter()
            .await
            .map_err(SqlxError::statement(operation))?;
        let mut connection = self
            .pool
            .acquire()
            .await
            .map_err(SqlxError::statement(operation))?;
        let done = query
            .execute(on::<D>(&mut connection))
            .await
            .map_err(SqlxError::statement(operation))?;
        Ok(D::rows_affected(&done))
    }

    /// The candidate rows of a claim, and which of them `claimant` takes (see [`claim`]).
    async fn scan(
        tx: &mut Tx<D>,
        claimant: &str,
        limit: usize,
        now: i64,
    ) -> Result<Vec<i64>, SqlxError> {
        let operation = Operation::OutboxScan;
        let scan_size = int_param((limit as u64).saturating_mul(4).saturating_add(64));
        let scanned = statement::<D>(D::SQL.scan_outbox)
            .arg(scan_size)
            .fetch_all(on::<D>(tx))
            .await
            .map_err(SqlxError::statement(operation))?
            .iter()
            .map(|row| {
                let read = |name| SqlxError::column(operation, name);
                Ok(ScannedRow {
                    sequence: column::<D, _>(row, "sequence").map_err(read("sequence"))?,
                    key: column::<D, _>(row, "message_key").map_err(read("message_key"))?,
                    lease_owner: column::<D, _>(row, "lease_owner").map_err(read("lease_owner"))?,
                    lease_until: column::<D, _>(row, "lease_until").map_err(read("lease_until"))?,
                })
            })
            .collect::<Result<Vec<_>, SqlxError>>()?;
        let keys = claim::keys_of(&scanned);
        let mut history: HashMap<String, Vec<i64>> = HashMap::new();
        if let (false, Some(last)) = (keys.is_empty(), scanned.last()) {
            let operation = Operation::OutboxKeyHistory;
            let rows = statement::<D>(D::SQL.key_history)
                .arg(last.sequence)
                .arg(D::keys(&keys).map_err(SqlxError::list(operation))?)
                .fetch_all(on::<D>(tx))
                .await
                .map_err(SqlxError::statement(operation))?;
            for row in rows {
                let key: String = column::<D, _>(&row, "message_key")
                    .map_err(SqlxError::column(operation, "message_key"))?;
                let sequence: i64 = column::<D, _>(&row, "sequence")
                    .map_err(SqlxError::column(operation, "sequence"))?;
                history.entry(key).or_default().push(sequence);
            }
            for sequences in history.values_mut() {
                sequences.sort_unstable();
            }
        }
        Ok(claim::choose(claimant, now, limit, &scanned, &history))
    }

    async fn claim(
        &self,
        claimant: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, SqlxError> {
        let now = now_millis();
        let mut tx = begin::<D>(&self.pool, &self.gate).await?;
        let chosen = Self::scan(&mut tx, claimant, limit, now).await?;
        if chosen.is_empty() {
            tx.rollback().await.map_err(SqlxError::Rollback)?;
            return Ok(Vec::new());
        }
        statement::<D>(D::SQL.lease)
            .arg(claimant.to_string())
            .arg(now.saturating_add(millis(lease)))
            .arg(D::sequences(&chosen).map_err(SqlxError::list(Operation::OutboxLease))?)
            .execute(on::<D>(&mut tx))
            .await
            .map_err(SqlxError::statement(Operation::OutboxLease))?;
        let operation = Operation::OutboxFetch;
        let rows = statement::<D>(D::SQL.fetch_claimed)
            .arg(D::sequences(&chosen).map_err(SqlxError::list(operation))?)
            .fetch_all(on::<D>(&mut tx))
            .await
            .map_err(SqlxError::statement(operation))?;
        tx.commit().await.map_err(SqlxError::Commit)?;
        let mut entries = Vec::with_capacity(rows.len());
        let mut unreadable = Vec::new();
        for row in &rows {
            let stored = StoredMessage::read::<D>(row, operation)?;
            let sequence = stored.sequence;
            match stored.decode() {
                Ok(message) => entries.push(OutboxEntry { sequence, message }),
                // No publish can ever succeed for it: park it at once rather than fail every
                // claim that reaches it.
                Err(error) => unreadable.push(PublishFailure {
                    sequence,
                    error: format!("the stored message does not read back: {error}"),
                }),
            }
        }
        if !unreadable.is_empty() {
            for failure in &unreadable {
                tracing::error!(
                    sequence = failure.sequence,
                    error = %failure.error,
                    "outbox entry parked: it does not read back"
                );
            }
            self.record_failures(claimant, &unreadable, 1).await?;
        }
        Ok(entries)
    }

    /// The outbox sequences as the signed integers the tables hold.
    fn sequence_params(sequences: &[u64]) -> Vec<i64> {
        sequences.iter().copied().map(int_param).collect()
    }

    /// Runs a statement that returns one row on a pooled connection, outside any transaction.
    pub(crate) async fn fetch_one(
        &self,
        operation: Operation,
        query: crate::dialect::Statement<'static, D::Db>,
    ) -> Result<crate::dialect::DbRow<D>, SqlxError> {
        let mut connection = self
            .pool
            .acquire()
            .await
            .map_err(SqlxError::statement(operation))?;
        query
            .fetch_one(on::<D>(&mut connection))
            .await
            .map_err(SqlxError::statement(operation))
    }

    async fn record_failures(
        &self,
        claimant: &str,
        failures: &[PublishFailure],
        max_attempts: u32,
    ) -> Result<Vec<u64>, SqlxError> {
        let operation = Operation::RecordFailure;
        let now = now_millis();
        let mut tx = begin::<D>(&self.pool, &self.gate).await?;
        let mut parked = Vec::new();
        for failure in failures {
            let row = statement::<D>(D::SQL.record_failure)
                .arg(failure.error.clone())
                .arg(i64::from(max_attempts))
                .arg(now)
                .arg(int_param(failure.sequence))
                .arg(claimant.to_string())
                .fetch_optional(on::<D>(&mut tx))
                .await
                .map_err(SqlxError::statement(operation))?;
            if let Some(row) = row {
                let parked_at: Option<i64> = column::<D, _>(&row, "parked_at")
                    .map_err(SqlxError::column(operation, "parked_at"))?;
                if parked_at.is_some() {
                    parked.push(failure.sequence);
                }
            }
        }
        tx.commit().await.map_err(SqlxError::Commit)?;
        Ok(parked)
    }

    async fn parked(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ParkedEntry>, SqlxError> {
        let operation = Operation::ListParked;
        let mut connection = self
            .pool
            .acquire()
            .await
            .map_err(SqlxError::statement(operation))?;
        let rows = statement::<D>(D::SQL.parked)
            .arg(after.map_or(0, int_param))
            .arg(int_param(limit as u64))
            .fetch_all(on::<D>(&mut connection))
            .await
            .map_err(SqlxError::statement(operation))?;
        rows.iter()
            .map(|row| {
                let read = |name| SqlxError::column(operation, name);
                let stored = StoredMessage::read::<D>(row, operation)?;
                let attempts: i64 = column::<D, _>(row, "attempts").map_err(read("attempts"))?;
                let last_error: Option<String> =
                    column::<D, _>(row, "last_error").map_err(read("last_error"))?;
                let parked_at: Option<i64> =
                    column::<D, _>(row, "parked_at").map_err(read("parked_at"))?;
                Ok(ParkedEntry {
                    sequence: stored.sequence,
                    topic: stored.topic.clone(),
                    key: stored.key.clone(),
                    message: stored.decode().ok(),
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    last_error: last_error.unwrap_or_default(),
                    parked_at: parked_at.unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Runs `sql` (binding one sequence) on a parked row; `NotFound` when none matched.
    async fn on_parked(
        &self,
        operation: Operation,
        sql: &'static str,
        sequence: u64,
    ) -> Result<()> {
        let query = statement::<D>(sql).arg(int_param(sequence));
        if self.execute(operation, query).await? == 0 {
            return Err(Error::not_found("parked outbox entry", sequence));
        }
        // The row, or those its key held back, can be claimed now.
        self.signal.notify_one();
        Ok(())
    }
}

/// Opens a transaction the way dialect `D` wants (SQLite: `BEGIN IMMEDIATE`).
pub(crate) async fn begin<D: Dialect>(
    pool: &sqlx::Pool<D::Db>,
    gate: &WriterGate,
) -> Result<Tx<D>, SqlxError> {
    crate::dialect::open_transaction::<D>(pool, gate)
        .await
        .map_err(SqlxError::Begin)
}

#[async_trait]
impl<D: Dialect> TransactionalStore for SqlStore<D> {
    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        let transaction = if D::BATCHES_STATEMENTS {
            // `BEGIN` goes with the transaction's first statement.
            let tx = crate::dialect::ManualTx::<D>::acquire(&self.pool, &self.gate)
                .await
                .map_err(SqlxError::Begin)?;
            SqlTransaction::<D>::batching(tx, Arc::clone(&self.signal))
        } else {
            let tx = begin::<D>(&self.pool, &self.gate).await?;
            SqlTransaction::<D>::new(tx, Arc::clone(&self.signal))
        };
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        let transaction = transaction.delivering_to(self.direct.get().cloned());
        Ok(Box::new(transaction))
    }
}

#[async_trait]
impl<D: Dialect> OutboxStore for SqlStore<D> {
    async fn claim(
        &self,
        claimant: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        Ok(SqlStore::claim(self, claimant, limit, lease).await?)
    }

    async fn mark_published(&self, claimant: &str, sequences: &[u64]) -> Result<()> {
        if sequences.is_empty() {
            return Ok(());
        }
        let operation = Operation::MarkPublished;
        let list =
            D::sequences(&Self::sequence_params(sequences)).map_err(SqlxError::list(operation))?;
        let query = statement::<D>(D::SQL.mark_published)
            .arg(now_millis())
            .arg(claimant.to_string())
            .arg(list);
        self.execute(operation, query).await?;
        Ok(())
    }

    async fn release(&self, claimant: &str, sequences: &[u64]) -> Result<()> {
        if sequences.is_empty() {
            return Ok(());
        }
        let operation = Operation::Release;
        let list =
            D::sequences(&Self::sequence_params(sequences)).map_err(SqlxError::list(operation))?;
        let query = statement::<D>(D::SQL.release)
            .arg(claimant.to_string())
            .arg(list);
        self.execute(operation, query).await?;
        Ok(())
    }

    async fn renew(&self, claimant: &str, sequences: &[u64], lease: Duration) -> Result<u64> {
        if sequences.is_empty() {
            return Ok(0);
        }
        let operation = Operation::Renew;
        let list =
            D::sequences(&Self::sequence_params(sequences)).map_err(SqlxError::list(operation))?;
        let query = statement::<D>(D::SQL.renew)
            .arg(now_millis().saturating_add(millis(lease)))
            .arg(claimant.to_string())
            .arg(list);
        Ok(self.execute(operation, query).await?)
    }

    async fn record_failures(
        &self,
        claimant: &str,
        failures: &[PublishFailure],
        max_attempts: u32,
    ) -> Result<Vec<u64>> {
        if failures.is_empty() {
            return Ok(Vec::new());
        }
        Ok(SqlStore::record_failures(self, claimant, failures, max_attempts).await?)
    }

    async fn parked(&self, after: Option<u64>, limit: usize) -> Result<Vec<ParkedEntry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        Ok(SqlStore::parked(self, after, limit).await?)
    }

    async fn redrive(&self, sequence: u64) -> Result<()> {
        self.on_parked(Operation::Redrive, D::SQL.redrive, sequence)
            .await
    }

    async fn discard(&self, sequence: u64) -> Result<()> {
        self.on_parked(Operation::Discard, D::SQL.discard, sequence)
            .await
    }

    async fn lag(&self) -> Result<OutboxLag> {
        let operation = Operation::Lag;
        let row = self
            .fetch_one(operation, statement::<D>(D::SQL.lag))
            .await?;
        let oldest: Option<i64> =
            column::<D, _>(&row, "oldest").map_err(SqlxError::column(operation, "oldest"))?;
        let pending: i64 =
            column::<D, _>(&row, "pending").map_err(SqlxError::column(operation, "pending"))?;
        let parked: i64 =
            column::<D, _>(&row, "parked").map_err(SqlxError::column(operation, "parked"))?;
        let age = |created_at: i64| {
            let millis = now_millis().saturating_sub(created_at).max(0);
            Duration::from_millis(u64::try_from(millis).unwrap_or_default())
        };
        Ok(OutboxLag {
            oldest_pending_age: oldest.map(age),
            pending: u64::try_from(pending).unwrap_or_default(),
            parked: u64::try_from(parked).unwrap_or_default(),
        })
    }

    async fn purge_published(&self, older_than: Duration) -> Result<u64> {
        let cutoff = now_millis().saturating_sub(millis(older_than));
        let query = statement::<D>(D::SQL.purge).arg(cutoff);
        Ok(self.execute(Operation::Purge, query).await?)
    }

    async fn pending(&self) -> Result<u64> {
        let operation = Operation::Pending;
        let row = self
            .fetch_one(operation, statement::<D>(D::SQL.pending))
            .await?;
        let count: i64 =
            column::<D, _>(&row, "pending").map_err(SqlxError::column(operation, "pending"))?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    fn commit_signal(&self) -> Option<Arc<Notify>> {
        Some(Arc::clone(&self.signal))
    }
}

#[async_trait]
impl<D: Dialect> InboxStore for SqlStore<D> {
    async fn purge_inbox(&self, older_than: Duration) -> Result<u64> {
        let cutoff = now_millis().saturating_sub(millis(older_than));
        let query = statement::<D>(D::SQL.purge_inbox).arg(cutoff);
        Ok(self.execute(Operation::InboxPurge, query).await?)
    }
}
