// The store, transaction and document repository, written once and included by each backend
// module (`sqlite`, `postgres`) after it defines `Db`, the `sql` statements and `begin`.
// Each backend gets its own concrete types, checked by the compiler against its driver.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::{AssertSqlSafe, Row};
use tokio::sync::Notify;

use seedwork::domain::{AggregateRoot, ChangeTracker, Page, PageRequest, Repository};
use seedwork::messaging::{Message, OutboxEntry, OutboxStore};
use seedwork::uow::{Transaction, TransactionalStore};
use seedwork::{Error, Result};

use crate::shared::claim::{self, ScannedRow};
use crate::shared::{checked_savepoint_name, json_list, millis, now_millis, rows, store_error};

/// The migrations shipped with this crate for this backend.
pub static MIGRATOR: sqlx::migrate::Migrator = migrator();

/// A transactional store with outbox and inbox on this backend: the
/// [`TransactionalStore`] and [`OutboxStore`] of `seedwork`.
///
/// Cheap to clone (it shares the pool). Create it with `connect`, or from an existing pool with
/// [`from_pool`](Self::from_pool); apply the shipped migrations with
/// [`migrate`](Self::migrate).
#[derive(Clone)]
pub struct Store {
    pool: sqlx::Pool<Db>,
    signal: Arc<Notify>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("pool", &self.pool).finish()
    }
}

impl Store {
    /// A store over an existing pool (configure it as `connect` does: see the backend docs).
    pub fn from_pool(pool: sqlx::Pool<Db>) -> Self {
        Store {
            pool,
            signal: Arc::new(Notify::new()),
        }
    }

    /// Applies the migrations shipped with the crate (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(Error::store)
    }

    /// The connection pool, for the application's own queries.
    pub fn pool(&self) -> &sqlx::Pool<Db> {
        &self.pool
    }

    /// Closes the pool: open transactions fail, new ones cannot start.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn scan(
        &self,
        tx: &mut sqlx::Transaction<'static, Db>,
        claimant: &str,
        limit: usize,
        now: i64,
    ) -> Result<Vec<i64>> {
        let scan_size = i64::try_from(limit.saturating_mul(4).saturating_add(64)).unwrap_or(i64::MAX);
        let scanned: Vec<ScannedRow> = sqlx::query(sql::SCAN_OUTBOX)
            .bind(scan_size)
            .fetch_all(&mut **tx)
            .await
            .map_err(store_error)?
            .iter()
            .map(|row| {
                Ok(ScannedRow {
                    sequence: row.try_get("sequence")?,
                    key: row.try_get("message_key")?,
                    lease_owner: row.try_get("lease_owner")?,
                    lease_until: row.try_get("lease_until")?,
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(store_error)?;
        let keys = claim::keys_of(&scanned);
        let mut history: HashMap<String, Vec<i64>> = HashMap::new();
        if let (false, Some(last)) = (keys.is_empty(), scanned.last()) {
            let rows = sqlx::query(sql::KEY_HISTORY)
                .bind(last.sequence)
                .bind(json_list(&keys)?)
                .fetch_all(&mut **tx)
                .await
                .map_err(store_error)?;
            for row in rows {
                let key: String = row.try_get("message_key").map_err(store_error)?;
                let sequence: i64 = row.try_get("sequence").map_err(store_error)?;
                history.entry(key).or_default().push(sequence);
            }
            for sequences in history.values_mut() {
                sequences.sort_unstable();
            }
        }
        Ok(claim::choose(claimant, now, limit, &scanned, &history))
    }
}

#[async_trait]
impl TransactionalStore for Store {
    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        let tx = begin(&self.pool).await.map_err(store_error)?;
        Ok(Box::new(SqlTransaction {
            tx,
            signal: Arc::clone(&self.signal),
            wrote_outbox: false,
        }))
    }
}

#[async_trait]
impl OutboxStore for Store {
    async fn claim(&self, claimant: &str, limit: usize, lease: Duration) -> Result<Vec<OutboxEntry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = now_millis();
        let mut tx = begin(&self.pool).await.map_err(store_error)?;
        let chosen = self.scan(&mut tx, claimant, limit, now).await?;
        if chosen.is_empty() {
            tx.rollback().await.map_err(store_error)?;
            return Ok(Vec::new());
        }
        let list = json_list(&chosen)?;
        sqlx::query(sql::LEASE)
            .bind(claimant)
            .bind(now.saturating_add(millis(lease)))
            .bind(&list)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        let rows = sqlx::query(sql::FETCH_CLAIMED)
            .bind(&list)
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        rows.iter()
            .map(|row| {
                let sequence: i64 = row.try_get("sequence").map_err(store_error)?;
                let topic: String = row.try_get("topic").map_err(store_error)?;
                let key: Option<String> = row.try_get("message_key").map_err(store_error)?;
                let envelope: String = row.try_get("envelope").map_err(store_error)?;
                let properties: String = row.try_get("properties").map_err(store_error)?;
                Ok(OutboxEntry {
                    sequence: u64::try_from(sequence).unwrap_or_default(),
                    message: rows::decode(topic, key, &envelope, &properties)?,
                })
            })
            .collect()
    }

    async fn mark_published(&self, claimant: &str, sequences: &[u64]) -> Result<()> {
        if sequences.is_empty() {
            return Ok(());
        }
        sqlx::query(sql::MARK)
            .bind(now_millis())
            .bind(claimant)
            .bind(json_list(sequences)?)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn release(&self, claimant: &str, sequences: &[u64]) -> Result<()> {
        if sequences.is_empty() {
            return Ok(());
        }
        sqlx::query(sql::RELEASE)
            .bind(claimant)
            .bind(json_list(sequences)?)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn purge_published(&self, older_than: Duration) -> Result<u64> {
        let cutoff = now_millis().saturating_sub(millis(older_than));
        let done = sqlx::query(sql::PURGE)
            .bind(cutoff)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected())
    }

    async fn pending(&self) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(sql::PENDING)
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    fn commit_signal(&self) -> Option<Arc<Notify>> {
        Some(Arc::clone(&self.signal))
    }
}

/// An open transaction on this backend. Repositories reach it with
/// `uow.transaction::<SqlTransaction>()` and run their statements on
/// [`connection`](Self::connection).
pub struct SqlTransaction {
    tx: sqlx::Transaction<'static, Db>,
    signal: Arc<Notify>,
    wrote_outbox: bool,
}

impl fmt::Debug for SqlTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlTransaction")
            .field("wrote_outbox", &self.wrote_outbox)
            .finish_non_exhaustive()
    }
}

impl SqlTransaction {
    /// The connection the transaction runs on: execute your statements here to make them part
    /// of the unit of work.
    pub fn connection(&mut self) -> &mut <Db as sqlx::Database>::Connection {
        &mut self.tx
    }
}

#[async_trait]
impl Transaction for SqlTransaction {
    async fn savepoint(&mut self, name: &str) -> Result<()> {
        let name = checked_savepoint_name(name)?;
        sqlx::query(AssertSqlSafe(format!("SAVEPOINT {name}")))
            .execute(&mut *self.tx)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn rollback_to_savepoint(&mut self, name: &str) -> Result<()> {
        let name = checked_savepoint_name(name)?;
        sqlx::query(AssertSqlSafe(format!("ROLLBACK TO SAVEPOINT {name}")))
            .execute(&mut *self.tx)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn append_outbox(&mut self, messages: Vec<Message>) -> Result<()> {
        let now = now_millis();
        for message in &messages {
            let columns = rows::encode(message)?;
            sqlx::query(sql::INSERT_OUTBOX)
                .bind(columns.message_id)
                .bind(columns.topic)
                .bind(columns.key)
                .bind(columns.envelope)
                .bind(columns.properties)
                .bind(now)
                .execute(&mut *self.tx)
                .await
                .map_err(store_error)?;
        }
        self.wrote_outbox |= !messages.is_empty();
        Ok(())
    }

    async fn record_inbox(&mut self, consumer: &str, message_id: &str) -> Result<bool> {
        let done = sqlx::query(sql::INSERT_INBOX)
            .bind(consumer)
            .bind(message_id)
            .bind(now_millis())
            .execute(&mut *self.tx)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let SqlTransaction {
            tx,
            signal,
            wrote_outbox,
        } = *self;
        tx.commit().await.map_err(store_error)?;
        if wrote_outbox {
            signal.notify_one();
        }
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.tx.rollback().await.map_err(store_error)
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A [`Repository`] that keeps each aggregate as a JSON document with a version, in the shared
/// table `seedwork_aggregates`: no SQL to write for aggregates that serialize with serde.
///
/// The aggregate's `AggregateState` field must be `#[serde(skip)]`; the version lives in its own
/// column and is restored on load. `update` is optimistic: it replaces version `v` only if the
/// stored version still is `v`, and otherwise fails with [`Error::Conflict`].
pub struct JsonRepository<A> {
    pool: sqlx::Pool<Db>,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A> Clone for JsonRepository<A> {
    fn clone(&self) -> Self {
        JsonRepository {
            pool: self.pool.clone(),
            _aggregate: PhantomData,
        }
    }
}

impl<A: AggregateRoot> fmt::Debug for JsonRepository<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonRepository")
            .field("aggregate", &A::TYPE)
            .finish()
    }
}

impl<A> JsonRepository<A>
where
    A: AggregateRoot + Serialize + DeserializeOwned,
{
    /// A repository on the store's pool.
    pub fn new(store: &Store) -> Self {
        JsonRepository {
            pool: store.pool.clone(),
            _aggregate: PhantomData,
        }
    }

    /// Loads an aggregate inside the unit of work: it sees the unit of work's writes, and on
    /// PostgreSQL locks the row (`FOR UPDATE`) until the commit, so concurrent
    /// read-modify-writes of one aggregate wait for each other instead of conflicting.
    pub async fn get_in(&self, uow: &mut dyn ChangeTracker, id: &A::Id) -> Result<Option<A>> {
        let tx = uow.transaction::<SqlTransaction>()?;
        let row = sqlx::query(sql::AGG_GET_FOR_UPDATE)
            .bind(A::TYPE)
            .bind(id.to_string())
            .fetch_optional(&mut *tx.tx)
            .await
            .map_err(store_error)?;
        row.map(|row| materialise::<A>(&row)).transpose()
    }

    fn document(aggregate: &A) -> Result<String> {
        serde_json::to_string(aggregate).map_err(|e| Error::codec(A::TYPE, e))
    }
}

fn materialise<A: AggregateRoot + DeserializeOwned>(row: &<Db as sqlx::Database>::Row) -> Result<A> {
    let version: i64 = row.try_get("version").map_err(store_error)?;
    let data: String = row.try_get("data").map_err(store_error)?;
    let mut aggregate: A = serde_json::from_str(&data).map_err(|e| Error::codec(A::TYPE, e))?;
    aggregate
        .state_mut()
        .set_version(u64::try_from(version).unwrap_or_default());
    Ok(aggregate)
}

fn version_param(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

#[async_trait]
impl<A> Repository<A> for JsonRepository<A>
where
    A: AggregateRoot + Serialize + DeserializeOwned,
{
    async fn get(&self, id: &A::Id) -> Result<Option<A>> {
        let row = sqlx::query(sql::AGG_GET)
            .bind(A::TYPE)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.map(|row| materialise::<A>(&row)).transpose()
    }

    async fn get_for_update(&self, uow: &mut dyn ChangeTracker, id: &A::Id) -> Result<Option<A>> {
        self.get_in(uow, id).await
    }

    async fn list(&self, page: &PageRequest) -> Result<Page<A>> {
        let items = sqlx::query(sql::AGG_LIST)
            .bind(A::TYPE)
            .bind(page.cursor())
            .bind(i64::try_from(page.limit() + 1).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?
            .iter()
            .map(materialise::<A>)
            .collect::<Result<Vec<A>>>()?;
        Ok(Page::from_overfetch(items, page, |a: &A| a.id().to_string()))
    }

    async fn add(&self, uow: &mut dyn ChangeTracker, aggregate: &mut A) -> Result<()> {
        let id = aggregate.id().to_string();
        let document = Self::document(aggregate)?;
        let tx = uow.transaction::<SqlTransaction>()?;
        let done = sqlx::query(sql::AGG_INSERT)
            .bind(A::TYPE)
            .bind(&id)
            .bind(document)
            .bind(now_millis())
            .execute(&mut *tx.tx)
            .await
            .map_err(store_error)?;
        if done.rows_affected() == 0 {
            return Err(Error::Conflict {
                aggregate: A::TYPE,
                id,
                expected: 0,
            });
        }
        aggregate.state_mut().set_version(1);
        uow.track(aggregate);
        Ok(())
    }

    async fn update(&self, uow: &mut dyn ChangeTracker, aggregate: &mut A) -> Result<()> {
        let id = aggregate.id().to_string();
        let expected = aggregate.version();
        let document = Self::document(aggregate)?;
        let tx = uow.transaction::<SqlTransaction>()?;
        let done = sqlx::query(sql::AGG_UPDATE)
            .bind(document)
            .bind(now_millis())
            .bind(A::TYPE)
            .bind(&id)
            .bind(version_param(expected))
            .execute(&mut *tx.tx)
            .await
            .map_err(store_error)?;
        if done.rows_affected() == 0 {
            let exists = sqlx::query(sql::AGG_GET)
                .bind(A::TYPE)
                .bind(&id)
                .fetch_optional(&mut *tx.tx)
                .await
                .map_err(store_error)?
                .is_some();
            return Err(if exists {
                Error::Conflict {
                    aggregate: A::TYPE,
                    id,
                    expected,
                }
            } else {
                Error::not_found(A::TYPE, id)
            });
        }
        aggregate.state_mut().set_version(expected + 1);
        uow.track(aggregate);
        Ok(())
    }

    async fn remove(&self, uow: &mut dyn ChangeTracker, id: &A::Id) -> Result<()> {
        let tx = uow.transaction::<SqlTransaction>()?;
        let done = sqlx::query(sql::AGG_DELETE)
            .bind(A::TYPE)
            .bind(id.to_string())
            .execute(&mut *tx.tx)
            .await
            .map_err(store_error)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(A::TYPE, id));
        }
        Ok(())
    }
}
