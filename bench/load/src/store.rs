//! Counting the stored reservations, and the fresh PostgreSQL schema of a run.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

/// The `aggregate_type` of the example's reservations in `seedwork_aggregates`.
pub const RESERVA: &str = "Reserva";

const COUNT_SQLITE: &str = "SELECT COUNT(*) FROM seedwork_aggregates WHERE aggregate_type = ?";
const COUNT_POSTGRES: &str = "SELECT COUNT(*) FROM seedwork_aggregates WHERE aggregate_type = $1";

/// A read connection to the system's store.
pub enum Store {
    /// The SQLite file (WAL: reading does not hold up the system's writes).
    Sqlite(SqlitePool),
    /// The run's PostgreSQL schema.
    Postgres(PgPool),
}

impl Store {
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

    /// How many reservations are stored.
    pub async fn reservations(&self) -> Result<u64> {
        let count: i64 = match self {
            Store::Sqlite(pool) => {
                sqlx::query_scalar(COUNT_SQLITE)
                    .bind(RESERVA)
                    .fetch_one(pool)
                    .await
            }
            Store::Postgres(pool) => {
                sqlx::query_scalar(COUNT_POSTGRES)
                    .bind(RESERVA)
                    .fetch_one(pool)
                    .await
            }
        }
        .context("counting the stored reservations")?;
        Ok(u64::try_from(count).unwrap_or(0))
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

    #[test]
    fn schema_names_are_plain_identifiers() {
        let name = schema_name();
        assert_eq!(name.len(), "bench_".len() + 12);
        assert!(name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
    }
}
