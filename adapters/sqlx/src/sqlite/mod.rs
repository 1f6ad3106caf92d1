//! SQLite (feature `sqlite`): the embedded default.
//!
//! Connections use WAL, `synchronous = NORMAL`, foreign keys and a 5 s busy timeout; every
//! transaction opens with `BEGIN IMMEDIATE`, taking the write lock up front, because a deferred
//! `BEGIN` fails read-then-write units of work under concurrency with "database is locked".

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Sqlite as Db;

const fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations/sqlite")
}

async fn begin(pool: &sqlx::Pool<Db>) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

mod sql {
    pub(super) const SCAN_OUTBOX: &str = "SELECT sequence, message_key, lease_owner, lease_until \
        FROM seedwork_outbox WHERE published_at IS NULL ORDER BY sequence LIMIT ?";
    pub(super) const KEY_HISTORY: &str = "SELECT sequence, message_key FROM seedwork_outbox \
        WHERE published_at IS NULL AND sequence <= ? \
        AND message_key IN (SELECT value FROM json_each(?))";
    pub(super) const LEASE: &str = "UPDATE seedwork_outbox SET lease_owner = ?, lease_until = ? \
        WHERE sequence IN (SELECT value FROM json_each(?))";
    pub(super) const FETCH_CLAIMED: &str = "SELECT sequence, topic, message_key, envelope, \
        properties FROM seedwork_outbox WHERE sequence IN (SELECT value FROM json_each(?)) \
        ORDER BY sequence";
    pub(super) const MARK: &str = "UPDATE seedwork_outbox SET published_at = ?, \
        lease_owner = NULL, lease_until = NULL WHERE lease_owner = ? AND published_at IS NULL \
        AND sequence IN (SELECT value FROM json_each(?))";
    pub(super) const RELEASE: &str = "UPDATE seedwork_outbox SET lease_owner = NULL, \
        lease_until = NULL WHERE lease_owner = ? AND published_at IS NULL \
        AND sequence IN (SELECT value FROM json_each(?))";
    pub(super) const PURGE: &str =
        "DELETE FROM seedwork_outbox WHERE published_at IS NOT NULL AND published_at <= ?";
    pub(super) const PENDING: &str =
        "SELECT COUNT(*) FROM seedwork_outbox WHERE published_at IS NULL";
    pub(super) const INSERT_OUTBOX: &str = "INSERT INTO seedwork_outbox \
        (message_id, topic, message_key, envelope, properties, created_at) \
        VALUES (?, ?, ?, ?, ?, ?)";
    pub(super) const INSERT_INBOX: &str = "INSERT INTO seedwork_inbox \
        (consumer, message_id, processed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING";
    pub(super) const AGG_GET: &str =
        "SELECT version, data FROM seedwork_aggregates WHERE aggregate_type = ? AND id = ?";
    /// Writers are serialised by `BEGIN IMMEDIATE`: a plain read inside the transaction is
    /// already stable.
    pub(super) const AGG_GET_FOR_UPDATE: &str = AGG_GET;
    /// One page after an optional cursor: `?2` is the last id of the previous page or NULL.
    pub(super) const AGG_LIST: &str = "SELECT version, data FROM seedwork_aggregates \
        WHERE aggregate_type = ?1 AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3";
    pub(super) const AGG_INSERT: &str = "INSERT INTO seedwork_aggregates \
        (aggregate_type, id, version, data, updated_at) VALUES (?, ?, 1, ?, ?) \
        ON CONFLICT DO NOTHING";
    pub(super) const AGG_UPDATE: &str = "UPDATE seedwork_aggregates \
        SET version = version + 1, data = ?, updated_at = ? \
        WHERE aggregate_type = ? AND id = ? AND version = ?";
    pub(super) const AGG_DELETE: &str =
        "DELETE FROM seedwork_aggregates WHERE aggregate_type = ? AND id = ?";
}

include!("../shared/backend.rs");

impl Store {
    /// Opens (creating if missing) the SQLite database at `url` (`sqlite://path/app.db` or a
    /// plain path), with WAL and the settings above. Does not migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(store_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(store_error)?;
        Ok(Store::from_pool(pool))
    }

    /// [`connect`](Self::connect) then [`migrate`](Self::migrate).
    pub async fn open(url: &str) -> Result<Self> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }
}
