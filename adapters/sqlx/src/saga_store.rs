//! The saga store: instances in `seedwork_sagas`, as JSON with their version, status and
//! deadline beside it.

use async_trait::async_trait;

use seedwork::domain::ChangeTracker;
use seedwork::saga::{SagaKey, SagaRecord, SagaStore};
use seedwork::{Error, Result};

use crate::dialect::{column, on, statement, Bind, DbRow, Dialect};
use crate::error::{Operation, SqlxError};
use crate::shared::{int_param, now_millis};
use crate::store::SqlStore;
use crate::transaction::SqlTransaction;

/// What conflicts name as the aggregate.
const KIND: &str = "saga";
const TABLE: &str = "seedwork_sagas";

fn materialise<D: Dialect>(operation: Operation, row: &DbRow<D>) -> Result<SagaRecord, SqlxError> {
    let version: i64 =
        column::<D, _>(row, "version").map_err(SqlxError::column(operation, "version"))?;
    let data: String = column::<D, _>(row, "data").map_err(SqlxError::column(operation, "data"))?;
    let mut record: SagaRecord =
        serde_json::from_str(&data).map_err(|source| SqlxError::Decode {
            type_name: "SagaRecord".to_string(),
            table: TABLE,
            source,
        })?;
    record.version = u64::try_from(version).unwrap_or_default();
    Ok(record)
}

fn conflict(record: &SagaRecord, expected: u64) -> Error {
    Error::Conflict {
        aggregate: KIND,
        id: format!("{}/{}", record.saga, record.correlation_id),
        expected,
    }
}

/// The saga store of a SQL database: [`SagaStore`] on the store's own tables, so a saga's
/// step commits with the unit of work's outbox and inbox.
#[async_trait]
impl<D: Dialect> SagaStore for SqlStore<D> {
    async fn load(
        &self,
        uow: &mut dyn ChangeTracker,
        saga: &str,
        correlation_id: &str,
    ) -> Result<Option<SagaRecord>> {
        let operation = Operation::SagaGet;
        let tx = SqlTransaction::<D>::of(uow)?;
        let row = tx
            .statement(D::SQL.saga_get_for_update)
            .await?
            .arg(saga.to_string())
            .arg(correlation_id.to_string())
            .fetch_optional(tx.executor())
            .await
            .map_err(SqlxError::statement(operation))?;
        Ok(row
            .map(|row| materialise::<D>(operation, &row))
            .transpose()?)
    }

    async fn save(&self, uow: &mut dyn ChangeTracker, record: &mut SagaRecord) -> Result<()> {
        let operation = Operation::SagaSave;
        let expected = record.version;
        let data = serde_json::to_string(&*record).map_err(|source| SqlxError::Encode {
            type_name: "SagaRecord".to_string(),
            source,
        })?;
        let tx = SqlTransaction::<D>::of(uow)?;
        let write = if expected == 0 {
            tx.statement(D::SQL.saga_insert)
                .await?
                .arg(record.saga.clone())
                .arg(record.correlation_id.clone())
                .arg(record.status.as_str().to_string())
                .arg(record.deadline)
                .arg(data)
                .arg(now_millis())
        } else {
            tx.statement(D::SQL.saga_update)
                .await?
                .arg(record.status.as_str().to_string())
                .arg(record.deadline)
                .arg(data)
                .arg(now_millis())
                .arg(record.saga.clone())
                .arg(record.correlation_id.clone())
                .arg(int_param(expected))
        };
        let written = tx
            .execute(write)
            .await
            .map_err(SqlxError::statement(operation))?;
        if written == 0 {
            return Err(conflict(record, expected));
        }
        record.version = expected + 1;
        Ok(())
    }

    async fn get(&self, saga: &str, correlation_id: &str) -> Result<Option<SagaRecord>> {
        let operation = Operation::SagaGet;
        let mut connection = self
            .pool()
            .acquire()
            .await
            .map_err(SqlxError::statement(operation))?;
        let row = statement::<D>(D::SQL.saga_get)
            .arg(saga.to_string())
            .arg(correlation_id.to_string())
            .fetch_optional(on::<D>(&mut connection))
            .await
            .map_err(SqlxError::statement(operation))?;
        Ok(row
            .map(|row| materialise::<D>(operation, &row))
            .transpose()?)
    }

    async fn find(&self, correlation_id: &str) -> Result<Vec<SagaRecord>> {
        let operation = Operation::SagaFind;
        let mut connection = self
            .pool()
            .acquire()
            .await
            .map_err(SqlxError::statement(operation))?;
        let rows = statement::<D>(D::SQL.saga_find)
            .arg(correlation_id.to_string())
            .fetch_all(on::<D>(&mut connection))
            .await
            .map_err(SqlxError::statement(operation))?;
        Ok(rows
            .iter()
            .map(|row| materialise::<D>(operation, row))
            .collect::<Result<Vec<_>, SqlxError>>()?)
    }

    async fn due(&self, now: i64, limit: usize) -> Result<Vec<SagaKey>> {
        let operation = Operation::SagaDue;
        let mut connection = self
            .pool()
            .acquire()
            .await
            .map_err(SqlxError::statement(operation))?;
        let rows = statement::<D>(D::SQL.saga_due)
            .arg(now)
            .arg(int_param(limit as u64))
            .fetch_all(on::<D>(&mut connection))
            .await
            .map_err(SqlxError::statement(operation))?;
        rows.iter()
            .map(|row| {
                Ok(SagaKey {
                    saga: column::<D, _>(row, "saga")
                        .map_err(SqlxError::column(operation, "saga"))?,
                    correlation_id: column::<D, _>(row, "correlation_id")
                        .map_err(SqlxError::column(operation, "correlation_id"))?,
                })
            })
            .collect::<Result<Vec<_>, SqlxError>>()
            .map_err(Into::into)
    }
}
