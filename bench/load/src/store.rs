//! Counting the stored reservations, and the fresh PostgreSQL schema of a run.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::FromRow;

/// The example's reservations: their `aggregate_type` in `seedwork_aggregates` (state-stored,
/// binaries before tutorial 7's version) and their `stream_type` in `seedwork_events`
/// (event-sourced since).
pub const RESERVA: &str = "Reserva";

/// Reservations of either kind: state-stored rows, and event-sourced streams (each has one
/// event at version 1).
const COUNT_SQLITE: &str = "SELECT (SELECT COUNT(*) FROM seedwork_aggregates \
    WHERE aggregate_type = ?1) + (SELECT COUNT(*) FROM seedwork_events \
    WHERE stream_type = ?1 AND version = 1)";
const COUNT_POSTGRES: &str = "SELECT (SELECT COUNT(*) FROM seedwork_aggregates \
    WHERE aggregate_type = $1) + (SELECT COUNT(*) FROM seedwork_events \
    WHERE stream_type = $1 AND version = 1)";
/// The same for a schema without an event store (a binary from before it).
const COUNT_STATE_STORED_SQLITE: &str =
    "SELECT COUNT(*) FROM seedwork_aggregates WHERE aggregate_type = ?";
const COUNT_STATE_STORED_POSTGRES: &str =
    "SELECT COUNT(*) FROM seedwork_aggregates WHERE aggregate_type = $1";

/// Messages not yet through: outbox rows not published (nor parked) and transport
/// deliveries not yet acknowledged (the same text on both databases).
const BACKLOG: &str = "SELECT (SELECT COUNT(*) FROM seedwork_outbox \
    WHERE published_at IS NULL AND parked_at IS NULL) \
    + (SELECT COUNT(*) FROM seedwork_subscription_messages)";

const OUTBOX_ROWS: &str =
    "SELECT topic, message_key, message_id, created_at, published_at FROM seedwork_outbox";

/// A message's id is in the outbox row the relay published, or (written to the transport
/// directly) only in the topic log's envelope.
const HANDLED_SQLITE: &str = "SELECT COUNT(*) FROM seedwork_inbox \
    WHERE consumer = ?1 AND message_id IN ( \
    SELECT message_id FROM seedwork_outbox WHERE topic = ?2 AND message_key = ?3 \
    UNION ALL SELECT json_extract(envelope, '$.id') FROM seedwork_topic_log \
    WHERE topic = ?2 AND message_key = ?3)";
const HANDLED_POSTGRES: &str = "SELECT COUNT(*) FROM seedwork_inbox \
    WHERE consumer = $1 AND message_id IN ( \
    SELECT message_id FROM seedwork_outbox WHERE topic = $2 AND message_key = $3 \
    UNION ALL SELECT envelope->>'id' FROM seedwork_topic_log \
    WHERE topic = $2 AND message_key = $3)";

const LOG_ROWS_SQLITE: &str =
    "SELECT topic, message_key, envelope, published_at FROM seedwork_topic_log";
const LOG_ROWS_POSTGRES: &str =
    "SELECT topic, message_key, envelope::text AS envelope, published_at FROM seedwork_topic_log";

const INBOX_ROWS: &str = "SELECT consumer, message_id, processed_at FROM seedwork_inbox";

/// One outbox row's timestamps (milliseconds since the epoch, the system's clock).
#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// Its topic.
    pub topic: String,
    /// Its ordering key (the reservation's id for the example's messages).
    pub message_key: Option<String>,
    /// The message's id, as the consumers' inboxes record it.
    pub message_id: String,
    /// When the unit of work wrote it.
    pub created_at: i64,
    /// When the relay marked it published (`None`: not yet).
    pub published_at: Option<i64>,
}

/// One inbox row: a consumer handled a message (its unit of work committed then).
#[derive(Debug, Clone)]
pub struct InboxRow {
    /// The consumer (its subscription name).
    pub consumer: String,
    /// The message's id.
    pub message_id: String,
    /// When (milliseconds since the epoch).
    pub processed_at: i64,
}

/// A read connection to the system's store.
pub enum Store {
    /// The SQLite file (WAL: reading does not hold up the system's writes).
    Sqlite(SqlitePool),
    /// The run's PostgreSQL schema.
    Postgres(PgPool),
}

/// Whether `error` says a table does not exist (a schema older than the event store).
fn is_missing_table(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(database) => {
            database.code().as_deref() == Some("42P01")
                || database.message().contains("no such table")
        }
        _ => false,
    }
}

impl Store {
    /// Counts the reservations with `sqlite` or `postgres`, whichever the store is.
    async fn count(&self, sqlite: &str, postgres: &str) -> Result<i64, sqlx::Error> {
        match self {
            Store::Sqlite(pool) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sqlite))
                    .bind(RESERVA)
                    .fetch_one(pool)
                    .await
            }
            Store::Postgres(pool) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(postgres))
                    .bind(RESERVA)
                    .fetch_one(pool)
                    .await
            }
        }
    }

    /// Opens the SQLite file the system created.
    pub async fn sqlite(path: &Path) -> Result<Store> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Store::Sqlite(pool))
    }

    /// Connects to PostgreSQL (a URL scoped to the run's schema, see [`scoped_url`]).
    pub async fn postgres(url: &str) -> Result<Store> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .context("connecting to PostgreSQL")?;
        Ok(Store::Postgres(pool))
    }

    /// How many reservations are stored (event-sourced or state-stored, whichever the
    /// binary under load writes).
    pub async fn reservations(&self) -> Result<u64> {
        let count = match self.count(COUNT_SQLITE, COUNT_POSTGRES).await {
            Err(error) if is_missing_table(&error) => {
                self.count(COUNT_STATE_STORED_SQLITE, COUNT_STATE_STORED_POSTGRES)
                    .await
            }
            counted => counted,
        }
        .context("counting the stored reservations")?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Messages still on their way (see [`BACKLOG`]).
    pub async fn backlog(&self) -> Result<u64> {
        let count: i64 = match self {
            Store::Sqlite(pool) => sqlx::query_scalar(BACKLOG).fetch_one(pool).await,
            Store::Postgres(pool) => sqlx::query_scalar(BACKLOG).fetch_one(pool).await,
        }
        .context("counting the messages on their way")?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Waits until no message is on its way, polling every 10 ms; the time it took, or an
    /// error once `timeout` has passed.
    pub async fn wait_idle(&self, timeout: Duration) -> Result<Duration> {
        let started = std::time::Instant::now();
        loop {
            let backlog = self.backlog().await?;
            if backlog == 0 {
                return Ok(started.elapsed());
            }
            if started.elapsed() >= timeout {
                anyhow::bail!(
                    "{backlog} message(s) still on their way {} s after the load",
                    timeout.as_secs_f64()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Whether `consumer` has handled (its inbox holds) the message on `topic` keyed `key`.
    pub async fn event_handled(&self, consumer: &str, topic: &str, key: &str) -> Result<bool> {
        let count: i64 = match self {
            Store::Sqlite(pool) => {
                sqlx::query_scalar(HANDLED_SQLITE)
                    .bind(consumer)
                    .bind(topic)
                    .bind(key)
                    .fetch_one(pool)
                    .await
            }
            Store::Postgres(pool) => {
                sqlx::query_scalar(HANDLED_POSTGRES)
                    .bind(consumer)
                    .bind(topic)
                    .bind(key)
                    .fetch_one(pool)
                    .await
            }
        }
        .context("reading an inbox")?;
        Ok(count > 0)
    }

    /// Every outbox row.
    pub async fn outbox_rows(&self) -> Result<Vec<OutboxRow>> {
        type Columns = (String, Option<String>, String, i64, Option<i64>);
        let rows: Vec<Columns> = self
            .all(OUTBOX_ROWS, OUTBOX_ROWS)
            .await
            .context("reading the outbox")?;
        Ok(rows
            .into_iter()
            .map(
                |(topic, message_key, message_id, created_at, published_at)| OutboxRow {
                    topic,
                    message_key,
                    message_id,
                    created_at,
                    published_at,
                },
            )
            .collect())
    }

    /// The durable transport's log as outbox rows written and published at its publish time:
    /// what a store feeding the transport directly appended, with no outbox row (an
    /// envelope without an id is left out).
    pub async fn log_rows(&self) -> Result<Vec<OutboxRow>> {
        type Columns = (String, Option<String>, String, i64);
        let rows: Vec<Columns> = self
            .all(LOG_ROWS_SQLITE, LOG_ROWS_POSTGRES)
            .await
            .context("reading the topic log")?;
        Ok(rows
            .into_iter()
            .filter_map(|(topic, message_key, envelope, published_at)| {
                let envelope: serde_json::Value = serde_json::from_str(&envelope).ok()?;
                Some(OutboxRow {
                    topic,
                    message_key,
                    message_id: envelope.get("id")?.as_str()?.to_string(),
                    created_at: published_at,
                    published_at: Some(published_at),
                })
            })
            .collect())
    }

    /// Every inbox row.
    pub async fn inbox_rows(&self) -> Result<Vec<InboxRow>> {
        let rows: Vec<(String, String, i64)> = self
            .all(INBOX_ROWS, INBOX_ROWS)
            .await
            .context("reading the inboxes")?;
        Ok(rows
            .into_iter()
            .map(|(consumer, message_id, processed_at)| InboxRow {
                consumer,
                message_id,
                processed_at,
            })
            .collect())
    }

    /// Every row of a query, written for each database.
    async fn all<T>(&self, sqlite: &'static str, postgres: &'static str) -> sqlx::Result<Vec<T>>
    where
        T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        match self {
            Store::Sqlite(pool) => sqlx::query_as(sqlite).fetch_all(pool).await,
            Store::Postgres(pool) => sqlx::query_as(postgres).fetch_all(pool).await,
        }
    }

    /// Closes the connection.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(pool) => pool.close().await,
            Store::Postgres(pool) => pool.close().await,
        }
    }
}

/// A schema name for one run: `bench_` and 12 hex digits.
pub fn schema_name() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("bench_{}", &id[..12])
}

/// `url` with every connection's `search_path` set to `schema`.
pub fn scoped_url(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// Creates `schema` (a name from [`schema_name`]).
pub async fn create_schema(url: &str, schema: &str) -> Result<()> {
    admin(url, &format!("CREATE SCHEMA {schema}"))
        .await
        .with_context(|| format!("creating schema {schema}"))
}

/// Drops `schema` and everything in it.
pub async fn drop_schema(url: &str, schema: &str) -> Result<()> {
    admin(url, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .with_context(|| format!("dropping schema {schema}"))
}

async fn admin(url: &str, statement: &str) -> Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .context("connecting to PostgreSQL")?;
    let done = sqlx::query(sqlx::AssertSqlSafe(statement.to_string()))
        .execute(&pool)
        .await;
    pool.close().await;
    done?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_goes_into_the_url_options() {
        assert_eq!(
            scoped_url("postgres://u:p@h/db", "bench_1"),
            "postgres://u:p@h/db?options=-c%20search_path%3Dbench_1"
        );
        assert_eq!(
            scoped_url("postgres://h/db?sslmode=disable", "bench_1"),
            "postgres://h/db?sslmode=disable&options=-c%20search_path%3Dbench_1"
        );
    }

    /// Reservations are counted in the event store and among state-stored aggregates, and in
    /// the latter alone where the schema has no event store (a binary from before it).
    #[test]
    fn reservations_are_counted_in_either_schema() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("count.db");
            std::fs::File::create(&path).expect("file");
            let store = Store::sqlite(&path).await.expect("open");
            let Store::Sqlite(pool) = &store else {
                unreachable!("opened as SQLite")
            };
            for sql in [
                "CREATE TABLE seedwork_aggregates (aggregate_type TEXT, id TEXT)",
                "INSERT INTO seedwork_aggregates VALUES ('Reserva', 'a'), ('Reserva', 'b'), \
                 ('Pago', 'a')",
            ] {
                sqlx::query(sql).execute(pool).await.expect("setup");
            }
            assert_eq!(store.reservations().await.expect("count"), 2);
            for sql in [
                "CREATE TABLE seedwork_events (stream_type TEXT, stream_id TEXT, version INTEGER)",
                "INSERT INTO seedwork_events VALUES ('Reserva', 'c', 1), ('Reserva', 'c', 2), \
                 ('Reserva', 'd', 1), ('Pago', 'e', 1)",
            ] {
                sqlx::query(sql).execute(pool).await.expect("setup");
            }
            assert_eq!(store.reservations().await.expect("count"), 4);
        });
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        let name = schema_name();
        assert_eq!(name.len(), "bench_".len() + 12);
        assert!(name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
    }
}
