//! The event store: streams in `seedwork_events` (positions as the dialect's [`EventAppend`]
//! gives them), snapshots in `seedwork_snapshots`.

use async_trait::async_trait;

use seedwork::domain::ChangeTracker;
use seedwork::eventsourcing::{EventStore, NewEvent, Snapshot, StoredEvent};
use seedwork::{Error, Result};

use crate::dialect::{
    column, on, statement, Bind, DbRow, Dialect, EventAppend, EVENTS_PER_TRANSACTION,
};
use crate::error::{Operation, SqlxError};
use crate::shared::{int_param, now_millis};
use crate::store::SqlStore;
use crate::transaction::SqlTransaction;

const EVENTS: &str = "seedwork_events";

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

/// A row of `event_read_all` (the stream's columns included) as a [`StoredEvent`].
fn stored<D: Dialect>(operation: Operation, row: &DbRow<D>) -> Result<StoredEvent, SqlxError> {
    let text = |name: &'static str| -> Result<String, SqlxError> {
        column::<D, String>(row, name).map_err(SqlxError::column(operation, name))
    };
    let stream = (text("stream_type")?, text("stream_id")?);
    in_stream::<D>(operation, row, stream)
}

/// A row of `event_load` (without the stream's columns: the caller knows them) as a
/// [`StoredEvent`] of `stream_type`/`stream_id`.
fn in_stream<D: Dialect>(
    operation: Operation,
    row: &DbRow<D>,
    (stream_type, stream_id): (String, String),
) -> Result<StoredEvent, SqlxError> {
    let int = |name: &'static str| -> Result<i64, SqlxError> {
        column::<D, i64>(row, name).map_err(SqlxError::column(operation, name))
    };
    let text = |name: &'static str| -> Result<String, SqlxError> {
        column::<D, String>(row, name).map_err(SqlxError::column(operation, name))
    };
    let data = text("data")?;
    Ok(StoredEvent {
        position: unsigned(int("position")?),
        stream_type,
        stream_id,
        version: unsigned(int("version")?),
        event_type: text("event_type")?,
        event_version: text("event_version")?,
        data: serde_json::from_str(&data).map_err(|source| SqlxError::Decode {
            type_name: "StoredEvent".to_string(),
            table: EVENTS,
            source,
        })?,
        occurred_at: int("occurred_at")?,
    })
}

fn all_stored<D: Dialect>(
    operation: Operation,
    rows: &[DbRow<D>],
) -> Result<Vec<StoredEvent>, SqlxError> {
    rows.iter().map(|row| stored::<D>(operation, row)).collect()
}

/// The rows of `event_load` for one stream.
fn stream_events<D: Dialect>(
    rows: &[DbRow<D>],
    stream_type: &str,
    stream_id: &str,
) -> Result<Vec<StoredEvent>, SqlxError> {
    rows.iter()
        .map(|row| {
            let stream = (stream_type.to_string(), stream_id.to_string());
            in_stream::<D>(Operation::EventLoad, row, stream)
        })
        .collect()
}

fn conflict(stream_type: &str, stream_id: &str, expected: u64) -> Error {
    Error::Conflict {
        aggregate: "event stream",
        id: format!("{stream_type}/{stream_id}"),
        expected,
    }
}

/// The event store of a SQL database: appends commit with the unit of work's outbox and inbox.
///
/// Where the positions come from depends on the dialect ([`EventAppend`]): on SQLite one above
/// the highest stored (its writers take turns), on PostgreSQL the appending transaction's id,
/// with readers stopping below the oldest transaction in progress. Either way a projection
/// following positions never skips an event that commits late.
#[async_trait]
impl<D: Dialect> EventStore for SqlStore<D> {
    async fn append(
        &self,
        uow: &mut dyn ChangeTracker,
        stream_type: &str,
        stream_id: &str,
        expected: u64,
        events: &[NewEvent],
    ) -> Result<u64> {
        if events.is_empty() {
            return Ok(expected);
        }
        let tx = SqlTransaction::<D>::of(uow)?;
        let recorded_at = now_millis();
        append_each::<D>(tx, stream_type, stream_id, expected, events, recorded_at).await
    }

    async fn load(
        &self,
        stream_type: &str,
        stream_id: &str,
        after: u64,
    ) -> Result<Vec<StoredEvent>> {
        let operation = Operation::EventLoad;
        let mut connection = self
            .pool()
            .acquire()
            .await
            .map_err(SqlxError::statement(operation))?;
        let rows = statement::<D>(D::SQL.event_load)
            .arg(stream_type.to_string())
            .arg(stream_id.to_string())
            .arg(int_param(after.min(i64::MAX as u64)))
            .fetch_all(on::<D>(&mut connection))
            .await
            .map_err(SqlxError::statement(operation))?;
        Ok(stream_events::<D>(&rows, stream_type, stream_id)?)
    }

    async fn load_in(
        &self,
        uow: &mut dyn ChangeTracker,
        stream_type: &str,
        stream_id: &str,
        after: u64,
    ) -> Result<Vec<StoredEvent>> {
        let operation = Operation::EventLoad;
        let tx = SqlTransaction::<D>::of(uow)?;
        let rows = tx
            .statement(D::SQL.event_load)
            .await?
            .arg(stream_type.to_string())
            .arg(stream_id.to_string())
            .arg(int_param(after.min(i64::MAX as u64)))
            .fetch_all(tx.executor())
            .await
            .map_err(SqlxError::statement(operation))?;
        Ok(stream_events::<D>(&rows, stream_type, stream_id)?)
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        let operation = Operation::EventReadAll;
        let mut connection = self
            .pool()
            .acquire()
            .await
            .map_err(SqlxError::statement(operation))?;
        let rows = statement::<D>(D::SQL.event_read_all)
            .arg(int_param(after.min(i64::MAX as u64)))
            .arg(int_param(limit as u64))
            .fetch_all(on::<D>(&mut connection))
            .await
            .map_err(SqlxError::statement(operation))?;
        Ok(all_stored::<D>(operation, &rows)?)
    }

    async fn last_position(&self) -> Result<u64> {
        let operation = Operation::EventReadAll;
        let row = self
            .fetch_one(operation, statement::<D>(D::SQL.event_last_position))
            .await?;
        let position: i64 =
            column::<D, _>(&row, "position").map_err(SqlxError::column(operation, "position"))?;
        Ok(unsigned(position))
    }

    async fn save_snapshot(
        &self,
        uow: &mut dyn ChangeTracker,
        stream_type: &str,
        stream_id: &str,
        snapshot: &Snapshot,
    ) -> Result<()> {
        let operation = Operation::SnapshotSave;
        let state = serde_json::to_string(&snapshot.state).map_err(|source| SqlxError::Encode {
            type_name: format!("{stream_type} snapshot"),
            source,
        })?;
        let tx = SqlTransaction::<D>::of(uow)?;
        let save = tx
            .statement(D::SQL.snapshot_save)
            .await?
            .arg(stream_type.to_string())
            .arg(stream_id.to_string())
            .arg(int_param(snapshot.version))
            .arg(state)
            .arg(now_millis());
        tx.execute(save)
            .await
            .map_err(SqlxError::statement(operation))?;
        Ok(())
    }

    async fn load_snapshot(&self, stream_type: &str, stream_id: &str) -> Result<Option<Snapshot>> {
        let operation = Operation::SnapshotLoad;
        let mut connection = self
            .pool()
            .acquire()
            .await
            .map_err(SqlxError::statement(operation))?;
        let row = statement::<D>(D::SQL.snapshot_load)
            .arg(stream_type.to_string())
            .arg(stream_id.to_string())
            .fetch_optional(on::<D>(&mut connection))
            .await
            .map_err(SqlxError::statement(operation))?;
        Ok(row
            .map(|row| snapshot::<D>(stream_type, &row))
            .transpose()?)
    }

    async fn load_snapshot_in(
        &self,
        uow: &mut dyn ChangeTracker,
        stream_type: &str,
        stream_id: &str,
    ) -> Result<Option<Snapshot>> {
        let operation = Operation::SnapshotLoad;
        let tx = SqlTransaction::<D>::of(uow)?;
        let row = tx
            .statement(D::SQL.snapshot_load)
            .await?
            .arg(stream_type.to_string())
            .arg(stream_id.to_string())
            .fetch_optional(tx.executor())
            .await
            .map_err(SqlxError::statement(operation))?;
        Ok(row
            .map(|row| snapshot::<D>(stream_type, &row))
            .transpose()?)
    }
}

/// Appends with one statement per event ([`EventAppend`]): each checks the version the one
/// before it wrote; where positions are per transaction, each takes the transaction's next
/// rank.
async fn append_each<D: Dialect>(
    tx: &mut SqlTransaction<D>,
    stream_type: &str,
    stream_id: &str,
    expected: u64,
    events: &[NewEvent],
    recorded_at: i64,
) -> Result<u64> {
    let operation = Operation::EventAppend;
    for (n, event) in events.iter().enumerate() {
        let version = expected + n as u64 + 1;
        let (sql, rank) = match D::SQL.event_append {
            EventAppend::AfterHighest(sql) => (sql, None),
            EventAppend::PerTransaction(sql) => (sql, Some(tx.events_appended)),
        };
        if rank.is_some_and(|rank| rank >= EVENTS_PER_TRANSACTION) {
            return Err(Error::UnitOfWork(format!(
                "one unit of work appends at most {EVENTS_PER_TRANSACTION} events"
            )));
        }
        let mut insert = tx
            .statement(sql)
            .await?
            .arg(stream_type.to_string())
            .arg(stream_id.to_string())
            .arg(int_param(version))
            .arg(event.event_type.clone())
            .arg(event.event_version.clone())
            .arg(payload(event)?)
            .arg(event.occurred_at)
            .arg(recorded_at);
        if let Some(rank) = rank {
            insert = insert.arg(int_param(rank));
        }
        let appended = tx
            .execute(insert)
            .await
            .map_err(SqlxError::statement(operation))?;
        // Counted even if refused: a rank is never handed out twice.
        tx.events_appended += 1;
        if appended == 0 {
            return Err(conflict(stream_type, stream_id, expected));
        }
    }
    Ok(expected + events.len() as u64)
}

/// An event's payload as the `data` column stores it.
fn payload(event: &NewEvent) -> Result<String, SqlxError> {
    serde_json::to_string(&event.data).map_err(|source| SqlxError::Encode {
        type_name: event.event_type.clone(),
        source,
    })
}

/// A `seedwork_snapshots` row as a [`Snapshot`].
fn snapshot<D: Dialect>(stream_type: &str, row: &DbRow<D>) -> Result<Snapshot, SqlxError> {
    let operation = Operation::SnapshotLoad;
    let version: i64 =
        column::<D, _>(row, "version").map_err(SqlxError::column(operation, "version"))?;
    let state: String =
        column::<D, _>(row, "state").map_err(SqlxError::column(operation, "state"))?;
    let state = serde_json::from_str(&state).map_err(|source| SqlxError::Decode {
        type_name: format!("{stream_type} snapshot"),
        table: "seedwork_snapshots",
        source,
    })?;
    Ok(Snapshot {
        version: unsigned(version),
        state,
    })
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use std::str::FromStr;
    use std::sync::Arc;

    use seedwork::application::Bus;
    use seedwork::eventsourcing::{EventStore, NewEvent};
    use seedwork::Error;
    use sqlx::postgres::PgConnectOptions;

    use crate::dialect::EVENTS_PER_TRANSACTION;
    use crate::{PostgresStore, PostgresTransaction};

    fn event() -> NewEvent {
        NewEvent {
            event_type: "Posted".into(),
            event_version: "v1".into(),
            data: serde_json::json!({}),
            occurred_at: 0,
        }
    }

    /// The last rank of a transaction is appended; the one after it is refused with a typed
    /// error before any statement runs, and nothing of the unit of work commits.
    #[tokio::test]
    #[ignore = "needs PostgreSQL: scripts/services up"]
    async fn a_transaction_out_of_ranks_is_refused() {
        let url = std::env::var("SEEDWORK_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://seedwork:seedwork@127.0.0.1:5432/seedwork".into());
        let schema = format!("test_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&url).await.expect("PostgreSQL is up");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .expect("schema");
        let options = PgConnectOptions::from_str(&url)
            .expect("url")
            .options([("search_path", schema.as_str())]);
        let store = PostgresStore::connect_with(options).await.expect("connect");
        store.migrate().await.expect("migrate");
        let bus = Bus::builder()
            .store(Arc::new(store.clone()))
            .build()
            .expect("bus");

        let mut uow = bus.unit_of_work().await.expect("begin");
        uow.transaction::<PostgresTransaction>()
            .expect("a PostgreSQL transaction")
            .events_appended = EVENTS_PER_TRANSACTION - 1;
        let version = store
            .append(&mut uow, "t", "s", 0, &[event()])
            .await
            .expect("the last rank");
        assert_eq!(version, 1);
        let error = store
            .append(&mut uow, "t", "s", 1, &[event()])
            .await
            .expect_err("out of ranks");
        assert!(matches!(error, Error::UnitOfWork(_)), "{error:?}");
        uow.rollback().await.expect("rollback");
        assert!(store.load("t", "s", 0).await.expect("load").is_empty());
        store.close().await;
        admin.close().await;
    }
}
