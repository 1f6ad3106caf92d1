//! A document repository: aggregates as versioned JSON in `seedwork_aggregates`.

use std::fmt;
use std::marker::PhantomData;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;

use seedwork::domain::{AggregateRoot, ChangeTracker, Page, PageRequest, Repository};
use seedwork::{Error, Result};

use crate::dialect::{column, on, statement, Bind, DbRow, Dialect};
use crate::error::{Operation, SqlxError};
use crate::shared::{int_param, now_millis};
use crate::store::SqlStore;
use crate::transaction::SqlTransaction;

/// A [`Repository`] that keeps each aggregate as a JSON document with a version, in the shared
/// table `seedwork_aggregates`: no SQL to write for aggregates that serialize with serde. Use
/// it by its backend's name, [`SqliteJsonRepository`](crate::SqliteJsonRepository) or
/// [`PostgresJsonRepository`](crate::PostgresJsonRepository).
///
/// The aggregate's `AggregateState` field must be `#[serde(skip)]`; the version lives in its own
/// column and is restored on load. `update` is optimistic: it replaces version `v` only if the
/// stored version still is `v`, and otherwise fails with [`Error::Conflict`]. A stored document
/// that no longer decodes is an [`Error::Codec`] (a fault of the system, not of the caller).
pub struct JsonRepository<D: Dialect, A> {
    pool: sqlx::Pool<D::Db>,
    _aggregate: PhantomData<fn() -> A>,
}

impl<D: Dialect, A> Clone for JsonRepository<D, A> {
    fn clone(&self) -> Self {
        JsonRepository {
            pool: self.pool.clone(),
            _aggregate: PhantomData,
        }
    }
}

impl<D: Dialect, A: AggregateRoot> fmt::Debug for JsonRepository<D, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonRepository")
            .field("aggregate", &A::TYPE)
            .finish()
    }
}

impl<D, A> JsonRepository<D, A>
where
    D: Dialect,
    A: AggregateRoot + Serialize + DeserializeOwned,
{
    /// A repository on the store's pool.
    pub fn new(store: &SqlStore<D>) -> Self {
        JsonRepository {
            pool: store.pool().clone(),
            _aggregate: PhantomData,
        }
    }

    /// Loads an aggregate inside the unit of work: it sees the unit of work's writes, and on
    /// PostgreSQL locks the row (`FOR UPDATE`) until the commit, so concurrent
    /// read-modify-writes of one aggregate wait for each other instead of conflicting.
    pub async fn get_in(&self, uow: &mut dyn ChangeTracker, id: &A::Id) -> Result<Option<A>> {
        let tx = SqlTransaction::<D>::of(uow)?;
        let row = tx
            .statement(D::SQL.aggregate_get_for_update)
            .await?
            .arg(A::TYPE.to_string())
            .arg(id.to_string())
            .fetch_optional(tx.executor())
            .await
            .map_err(SqlxError::statement(Operation::AggregateGet))?;
        Ok(row
            .map(|row| materialise::<D, A>(Operation::AggregateGet, &row))
            .transpose()?)
    }

    fn document(aggregate: &A) -> Result<String, SqlxError> {
        serde_json::to_string(aggregate).map_err(|source| SqlxError::Encode {
            type_name: A::TYPE.to_string(),
            source,
        })
    }

    async fn fetch(
        &self,
        operation: Operation,
        sql: &'static str,
        id: String,
    ) -> Result<Option<DbRow<D>>, SqlxError> {
        let mut connection = self
            .pool
            .acquire()
            .await
            .map_err(SqlxError::statement(operation))?;
        statement::<D>(sql)
            .arg(A::TYPE.to_string())
            .arg(id)
            .fetch_optional(on::<D>(&mut connection))
            .await
            .map_err(SqlxError::statement(operation))
    }
}

/// The aggregate in a `version, data` row.
fn materialise<D, A>(operation: Operation, row: &DbRow<D>) -> Result<A, SqlxError>
where
    D: Dialect,
    A: AggregateRoot + DeserializeOwned,
{
    let version: i64 =
        column::<D, _>(row, "version").map_err(SqlxError::column(operation, "version"))?;
    let data: String = column::<D, _>(row, "data").map_err(SqlxError::column(operation, "data"))?;
    let mut aggregate: A = serde_json::from_str(&data).map_err(|source| SqlxError::Decode {
        type_name: A::TYPE.to_string(),
        table: "seedwork_aggregates",
        source,
    })?;
    aggregate
        .state_mut()
        .set_version(u64::try_from(version).unwrap_or_default());
    Ok(aggregate)
}

#[async_trait]
impl<D, A> Repository<A> for JsonRepository<D, A>
where
    D: Dialect,
    A: AggregateRoot + Serialize + DeserializeOwned,
{
    async fn get(&self, id: &A::Id) -> Result<Option<A>> {
        let operation = Operation::AggregateGet;
        let row = self
            .fetch(operation, D::SQL.aggregate_get, id.to_string())
            .await?;
        Ok(row
            .map(|row| materialise::<D, A>(operation, &row))
            .transpose()?)
    }

    async fn get_for_update(&self, uow: &mut dyn ChangeTracker, id: &A::Id) -> Result<Option<A>> {
        self.get_in(uow, id).await
    }

    async fn list(&self, page: &PageRequest) -> Result<Page<A>> {
        let operation = Operation::AggregateList;
        let mut connection = self
            .pool
            .acquire()
            .await
            .map_err(SqlxError::statement(operation))?;
        let items = statement::<D>(D::SQL.aggregate_list)
            .arg(A::TYPE.to_string())
            .arg(page.cursor().map(str::to_string))
            .arg(int_param(page.limit() as u64 + 1))
            .fetch_all(on::<D>(&mut connection))
            .await
            .map_err(SqlxError::statement(operation))?
            .iter()
            .map(|row| materialise::<D, A>(operation, row))
            .collect::<Result<Vec<A>, SqlxError>>()?;
        Ok(Page::from_overfetch(items, page, |a: &A| {
            a.id().to_string()
        }))
    }

    async fn add(&self, uow: &mut dyn ChangeTracker, aggregate: &mut A) -> Result<()> {
        let id = aggregate.id().to_string();
        let document = Self::document(aggregate)?;
        let tx = SqlTransaction::<D>::of(uow)?;
        let insert = tx
            .statement(D::SQL.aggregate_insert)
            .await?
            .arg(A::TYPE.to_string())
            .arg(id.clone())
            .arg(document)
            .arg(now_millis());
        let inserted = tx
            .execute(insert)
            .await
            .map_err(SqlxError::statement(Operation::AggregateInsert))?;
        if inserted == 0 {
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
        let tx = SqlTransaction::<D>::of(uow)?;
        let operation = Operation::AggregateUpdate;
        let update = tx
            .statement(D::SQL.aggregate_update)
            .await?
            .arg(document)
            .arg(now_millis())
            .arg(A::TYPE.to_string())
            .arg(id.clone())
            .arg(int_param(expected));
        let updated = tx
            .execute(update)
            .await
            .map_err(SqlxError::statement(operation))?;
        if updated == 0 {
            let exists = statement::<D>(D::SQL.aggregate_get)
                .arg(A::TYPE.to_string())
                .arg(id.clone())
                .fetch_optional(tx.executor())
                .await
                .map_err(SqlxError::statement(operation))?
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
        let tx = SqlTransaction::<D>::of(uow)?;
        let delete = tx
            .statement(D::SQL.aggregate_delete)
            .await?
            .arg(A::TYPE.to_string())
            .arg(id.to_string());
        let deleted = tx
            .execute(delete)
            .await
            .map_err(SqlxError::statement(Operation::AggregateDelete))?;
        if deleted == 0 {
            return Err(Error::not_found(A::TYPE, id));
        }
        Ok(())
    }
}
