//! SQLite (feature `sqlite`): the embedded default.
//!
//! Connections use WAL, `synchronous = NORMAL`, foreign keys and a 5 s busy timeout; every
//! transaction opens with `BEGIN IMMEDIATE`, taking the write lock up front, because a deferred
//! `BEGIN` fails read-then-write units of work under concurrency with "database is locked".
//! Lists of sequences and keys are bound as one JSON array and read with `json_each`.

mod sql;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::dialect::{sealed, Dialect, Statements, TransportStatements};
use crate::error::SqlxError;
use crate::shared::json_list;
use crate::shared::writer_gate::WriterGate;

/// The SQLite dialect: [`SqlStore<Sqlite>`](crate::SqlStore) is [`SqliteStore`](crate::SqliteStore).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Sqlite;

/// The migrations shipped with this crate for SQLite.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite store (the crate root's [`SqliteStore`](crate::SqliteStore)).
pub type Store = crate::SqlStore<Sqlite>;
/// A SQLite transaction (the crate root's [`SqliteTransaction`](crate::SqliteTransaction)).
pub type SqlTransaction = crate::SqlTransaction<Sqlite>;
/// The SQLite document repository (the crate root's
/// [`SqliteJsonRepository`](crate::SqliteJsonRepository)).
pub type JsonRepository<A> = crate::JsonRepository<Sqlite, A>;

impl sealed::Sealed for Sqlite {}

impl Dialect for Sqlite {
    type Db = sqlx::Sqlite;
    type Sequences = String;
    type Keys = String;

    const SQL: Statements = sql::STATEMENTS;
    const TRANSPORT: TransportStatements = sql::TRANSPORT;
    const BEGIN: Option<&'static str> = Some("BEGIN IMMEDIATE");
    const BATCHES_STATEMENTS: bool = true;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn sequences(sequences: &[i64]) -> Result<String, serde_json::Error> {
        json_list(sequences)
    }

    fn keys(keys: &[String]) -> Result<String, serde_json::Error> {
        json_list(keys)
    }

    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    fn writer_gate(pool: &sqlx::SqlitePool) -> WriterGate {
        WriterGate::of_file(pool.connect_options().get_filename())
    }
}

impl crate::SqlStore<Sqlite> {
    /// Opens (creating if missing) the SQLite database at `url` (`sqlite://path/app.db` or a
    /// plain path), with WAL and the settings above. Does not migrate.
    pub async fn connect(url: &str) -> seedwork::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(SqlxError::Options)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        // A connection to a local file does not go stale, so the pool hands it out without
        // the ping it would otherwise send first: one hand-off to the connection's worker
        // thread less for every transaction and every read.
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
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
