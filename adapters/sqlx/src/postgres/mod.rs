//! PostgreSQL (feature `postgres`): for production.
//!
//! Claims lock candidate outbox rows with `FOR UPDATE SKIP LOCKED`, so several relays (in
//! several processes) claim disjoint rows without waiting for each other; order per key is
//! still kept because a claim also checks every earlier unpublished row of each key, locked or
//! not.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::Postgres as Db;

const fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations/postgres")
}

async fn begin(pool: &sqlx::Pool<Db>) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    pool.begin().await
}

mod sql {
    pub(super) const SCAN_OUTBOX: &str = "SELECT sequence, message_key, lease_owner, lease_until \
        FROM seedwork_outbox WHERE published_at IS NULL ORDER BY sequence LIMIT $1 \
        FOR UPDATE SKIP LOCKED";
    pub(super) const KEY_HISTORY: &str = "SELECT sequence, message_key FROM seedwork_outbox \
        WHERE published_at IS NULL AND sequence <= $1 \
        AND message_key IN (SELECT jsonb_array_elements_text($2::jsonb))";
    pub(super) const LEASE: &str = "UPDATE seedwork_outbox SET lease_owner = $1, \
        lease_until = $2 WHERE sequence IN \
        (SELECT jsonb_array_elements_text($3::jsonb)::bigint)";
    pub(super) const FETCH_CLAIMED: &str = "SELECT sequence, topic, message_key, \
        envelope::text AS envelope, properties::text AS properties FROM seedwork_outbox \
        WHERE sequence IN (SELECT jsonb_array_elements_text($1::jsonb)::bigint) \
        ORDER BY sequence";
    pub(super) const MARK: &str = "UPDATE seedwork_outbox SET published_at = $1, \
        lease_owner = NULL, lease_until = NULL WHERE lease_owner = $2 AND published_at IS NULL \
        AND sequence IN (SELECT jsonb_array_elements_text($3::jsonb)::bigint)";
    pub(super) const RELEASE: &str = "UPDATE seedwork_outbox SET lease_owner = NULL, \
        lease_until = NULL WHERE lease_owner = $1 AND published_at IS NULL \
        AND sequence IN (SELECT jsonb_array_elements_text($2::jsonb)::bigint)";
    pub(super) const PURGE: &str =
        "DELETE FROM seedwork_outbox WHERE published_at IS NOT NULL AND published_at <= $1";
    pub(super) const PENDING: &str =
        "SELECT COUNT(*) FROM seedwork_outbox WHERE published_at IS NULL";
    pub(super) const INSERT_OUTBOX: &str = "INSERT INTO seedwork_outbox \
        (message_id, topic, message_key, envelope, properties, created_at) \
        VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6)";
    pub(super) const INSERT_INBOX: &str = "INSERT INTO seedwork_inbox \
        (consumer, message_id, processed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
    pub(super) const AGG_GET: &str = "SELECT version, data::text AS data FROM seedwork_aggregates \
        WHERE aggregate_type = $1 AND id = $2";
    pub(super) const AGG_GET_FOR_UPDATE: &str = "SELECT version, data::text AS data \
        FROM seedwork_aggregates WHERE aggregate_type = $1 AND id = $2 FOR UPDATE";
    /// One page after an optional cursor: `$2` is the last id of the previous page or NULL.
    pub(super) const AGG_LIST: &str = "SELECT version, data::text AS data \
        FROM seedwork_aggregates WHERE aggregate_type = $1 AND ($2::text IS NULL OR id > $2) \
        ORDER BY id LIMIT $3";
    pub(super) const AGG_INSERT: &str = "INSERT INTO seedwork_aggregates \
        (aggregate_type, id, version, data, updated_at) VALUES ($1, $2, 1, $3::jsonb, $4) \
        ON CONFLICT DO NOTHING";
    pub(super) const AGG_UPDATE: &str = "UPDATE seedwork_aggregates \
        SET version = version + 1, data = $1::jsonb, updated_at = $2 \
        WHERE aggregate_type = $3 AND id = $4 AND version = $5";
    pub(super) const AGG_DELETE: &str =
        "DELETE FROM seedwork_aggregates WHERE aggregate_type = $1 AND id = $2";
}

include!("../shared/backend.rs");

impl Store {
    /// Connects to the PostgreSQL database at `url` (`postgres://user:pass@host/db`). Does not
    /// migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(store_error)?;
        Store::connect_with(options).await
    }

    /// Connects with explicit options (e.g. a `search_path` per test schema).
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
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
