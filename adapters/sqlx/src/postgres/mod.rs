//! PostgreSQL (feature `postgres`): for production.
//!
//! Claims lock candidate outbox rows with `FOR UPDATE SKIP LOCKED`, so several relays (in
//! several processes) claim disjoint rows without waiting for each other; order per key is
//! still kept because a claim also checks every earlier unpublished row of each key, locked or
//! not. Lists of sequences and keys are bound as native arrays (`= ANY($1)`).

mod sql;

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::dialect::{sealed, Dialect, Statements, TransportStatements};
use crate::error::SqlxError;

/// The PostgreSQL dialect: [`SqlStore<Postgres>`](crate::SqlStore) is
/// [`PostgresStore`](crate::PostgresStore).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Postgres;

/// The migrations shipped with this crate for PostgreSQL.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL store (the crate root's [`PostgresStore`](crate::PostgresStore)).
pub type Store = crate::SqlStore<Postgres>;
/// A PostgreSQL transaction (the crate root's
/// [`PostgresTransaction`](crate::PostgresTransaction)).
pub type SqlTransaction = crate::SqlTransaction<Postgres>;
/// The PostgreSQL document repository (the crate root's
/// [`PostgresJsonRepository`](crate::PostgresJsonRepository)).
pub type JsonRepository<A> = crate::JsonRepository<Postgres, A>;

impl sealed::Sealed for Postgres {}

impl Dialect for Postgres {
    type Db = sqlx::Postgres;
    type Sequences = Vec<i64>;
    type Keys = Vec<String>;

    const SQL: Statements = sql::STATEMENTS;
    const TRANSPORT: TransportStatements = sql::TRANSPORT;
    const BEGIN: Option<&'static str> = None;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn sequences(sequences: &[i64]) -> Result<Vec<i64>, serde_json::Error> {
        Ok(sequences.to_vec())
    }

    fn keys(keys: &[String]) -> Result<Vec<String>, serde_json::Error> {
        Ok(keys.to_vec())
    }

    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }

    fn spawn_listener(
        pool: &sqlx::PgPool,
        wakers: std::sync::Arc<crate::transport::Wakers>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        crate::transport::postgres::spawn_listener(pool, wakers)
    }
}

impl crate::SqlStore<Postgres> {
    /// Connects to the PostgreSQL database at `url` (`postgres://user:pass@host/db`). Does not
    /// migrate.
    pub async fn connect(url: &str) -> seedwork::Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(SqlxError::Options)?;
        Self::connect_with(options).await
    }

    /// Connects with explicit options (e.g. a `search_path` per test schema).
    pub async fn connect_with(options: PgConnectOptions) -> seedwork::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect_with(options)
            .await
            .map_err(SqlxError::Connect)?;
        Ok(Self::from_pool(pool))
    }

    /// [`connect`](Self::connect) then [`migrate`](Self::migrate).
    pub async fn open(url: &str) -> seedwork::Result<Self> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }
}
