//! The transport on SQLite: every write transaction opens with `BEGIN IMMEDIATE`, so claims,
//! publishes and settlements are serialised by SQLite's single writer lock.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Row, SqlitePool};
use tokio::task::JoinHandle;

use seedwork::messaging::{Consumer, Message, Publisher, Subscriber, SubscriptionOptions};
use seedwork::Result;

use super::{
    admit, choose, kind_name, parse_kind, Backend, Choice, Claimed, ConsumerRef, EncodedMessage,
    HeadRow, Outcome, StoredMessage, Transport, TransportSettings, Wakers,
};

mod sql {
    pub(super) const APPEND: &str = "INSERT INTO seedwork_topic_log \
        (topic, message_key, envelope, properties, published_at) VALUES (?, ?, ?, ?, ?) \
        RETURNING sequence";
    pub(super) const FAN_OUT: &str = "INSERT INTO seedwork_subscription_messages \
        (subscription_id, sequence, message_key) \
        SELECT id, ?, ? FROM seedwork_subscriptions WHERE topic = ?";
    pub(super) const CREATE_SUBSCRIPTION: &str = "INSERT INTO seedwork_subscriptions \
        (topic, name, kind, created_sequence, created_at) \
        VALUES (?, ?, ?, (SELECT COALESCE(MAX(sequence), 0) FROM seedwork_topic_log), ?) \
        ON CONFLICT (topic, name) DO NOTHING";
    pub(super) const SUBSCRIPTION: &str =
        "SELECT id, kind FROM seedwork_subscriptions WHERE topic = ? AND name = ?";
    pub(super) const FORGET_EXPIRED: &str =
        "DELETE FROM seedwork_consumers WHERE subscription_id = ? AND lease_until <= ?";
    pub(super) const COUNT_CONSUMERS: &str =
        "SELECT COUNT(*) FROM seedwork_consumers WHERE subscription_id = ?";
    pub(super) const SET_KIND: &str = "UPDATE seedwork_subscriptions SET kind = ? WHERE id = ?";
    pub(super) const REGISTER: &str = "INSERT INTO seedwork_consumers \
        (subscription_id, attached_at, lease_until) VALUES (?, ?, ?) RETURNING id";
    pub(super) const LIVE_CONSUMERS: &str = "SELECT id FROM seedwork_consumers \
        WHERE subscription_id = ? AND lease_until > ? ORDER BY id";
    pub(super) const HEAD: &str = "SELECT sequence, message_key, visible_after, lease_owner \
        FROM seedwork_subscription_messages WHERE subscription_id = ? \
        ORDER BY sequence LIMIT ?";
    pub(super) const LEASE: &str = "UPDATE seedwork_subscription_messages \
        SET lease_owner = ?, deliveries = deliveries + 1 \
        WHERE subscription_id = ? AND sequence = ? RETURNING deliveries";
    pub(super) const FETCH: &str = "SELECT sequence, topic, message_key, envelope, properties \
        FROM seedwork_topic_log WHERE sequence = ?";
    pub(super) const ACK: &str = "DELETE FROM seedwork_subscription_messages \
        WHERE subscription_id = ? AND sequence = ? AND lease_owner = ? AND deliveries = ?";
    pub(super) const RETRY_LATER: &str = "UPDATE seedwork_subscription_messages \
        SET lease_owner = NULL, visible_after = ? \
        WHERE subscription_id = ? AND sequence = ? AND lease_owner = ? AND deliveries = ?";
    pub(super) const HEARTBEAT: &str = "UPDATE seedwork_consumers SET lease_until = ? \
        WHERE id = ? AND lease_until > ?";
    pub(super) const UNREGISTER: &str = "DELETE FROM seedwork_consumers WHERE id = ?";
    pub(super) const PURGE: &str = "DELETE FROM seedwork_topic_log WHERE published_at < ? \
        AND NOT EXISTS (SELECT 1 FROM seedwork_subscription_messages m \
        WHERE m.sequence = seedwork_topic_log.sequence)";
    pub(super) const RELEASE: &str = "UPDATE seedwork_subscription_messages \
        SET lease_owner = NULL WHERE lease_owner = ?";
}

struct SqliteBackend {
    pool: SqlitePool,
}

impl SqliteBackend {
    async fn begin(
        &self,
    ) -> std::result::Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }
}

async fn append_in(
    tx: &mut sqlx::SqliteConnection,
    message: &EncodedMessage<'_>,
    now: i64,
) -> std::result::Result<(), sqlx::Error> {
    let sequence: i64 = sqlx::query_scalar(sql::APPEND)
        .bind(message.topic)
        .bind(message.key)
        .bind(&message.envelope)
        .bind(&message.properties)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query(sql::FAN_OUT)
        .bind(sequence)
        .bind(message.key)
        .bind(message.topic)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

#[async_trait]
impl Backend for SqliteBackend {
    async fn append(&self, message: &EncodedMessage<'_>, now: i64) -> Outcome<()> {
        let mut tx = self.begin().await?;
        append_in(&mut tx, message, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn attach(
        &self,
        options: &SubscriptionOptions,
        now: i64,
        lease_until: i64,
    ) -> Outcome<(i64, i64)> {
        let mut tx = self.begin().await?;
        sqlx::query(sql::CREATE_SUBSCRIPTION)
            .bind(&options.topic)
            .bind(&options.subscription)
            .bind(kind_name(options.kind))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(sql::SUBSCRIPTION)
            .bind(&options.topic)
            .bind(&options.subscription)
            .fetch_one(&mut *tx)
            .await?;
        let subscription_id: i64 = row.try_get("id")?;
        let kind: String = row.try_get("kind")?;
        let existing = parse_kind(&kind)?;
        sqlx::query(sql::FORGET_EXPIRED)
            .bind(subscription_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let live: i64 = sqlx::query_scalar(sql::COUNT_CONSUMERS)
            .bind(subscription_id)
            .fetch_one(&mut *tx)
            .await?;
        admit(options, existing, live)?;
        if live == 0 && existing != options.kind {
            sqlx::query(sql::SET_KIND)
                .bind(kind_name(options.kind))
                .bind(subscription_id)
                .execute(&mut *tx)
                .await?;
        }
        let consumer: i64 = sqlx::query_scalar(sql::REGISTER)
            .bind(subscription_id)
            .bind(now)
            .bind(lease_until)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((subscription_id, consumer))
    }

    async fn claim(
        &self,
        consumer: &ConsumerRef,
        now: i64,
        scan_limit: i64,
    ) -> Outcome<std::result::Result<Claimed, Option<i64>>> {
        let mut tx = self.begin().await?;
        let live: Vec<i64> = sqlx::query_scalar(sql::LIVE_CONSUMERS)
            .bind(consumer.subscription_id)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
        let head = sqlx::query(sql::HEAD)
            .bind(consumer.subscription_id)
            .bind(scan_limit)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| {
                Ok(HeadRow {
                    sequence: row.try_get("sequence")?,
                    key: row.try_get("message_key")?,
                    visible_after: row.try_get("visible_after")?,
                    lease_owner: row.try_get("lease_owner")?,
                })
            })
            .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?;
        let sequence = match choose(consumer.kind, consumer.id, &live, &head, now) {
            Choice::Take(sequence) => sequence,
            Choice::Wait(wake_at) => return Ok(Err(wake_at)),
        };
        let deliveries: i64 = sqlx::query_scalar(sql::LEASE)
            .bind(consumer.id)
            .bind(consumer.subscription_id)
            .bind(sequence)
            .fetch_one(&mut *tx)
            .await?;
        let row = sqlx::query(sql::FETCH)
            .bind(sequence)
            .fetch_one(&mut *tx)
            .await?;
        let message = StoredMessage {
            sequence,
            topic: row.try_get("topic")?,
            key: row.try_get("message_key")?,
            envelope: row.try_get("envelope")?,
            properties: row.try_get("properties")?,
        };
        tx.commit().await?;
        Ok(Ok(Claimed {
            sequence,
            deliveries,
            message,
        }))
    }

    async fn ack(&self, consumer: &ConsumerRef, sequence: i64, attempt: i64) -> Outcome<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(sql::ACK)
            .bind(consumer.subscription_id)
            .bind(sequence)
            .bind(consumer.id)
            .bind(attempt)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn retry_later(
        &self,
        consumer: &ConsumerRef,
        sequence: i64,
        attempt: i64,
        visible_after: i64,
    ) -> Outcome<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(sql::RETRY_LATER)
            .bind(visible_after)
            .bind(consumer.subscription_id)
            .bind(sequence)
            .bind(consumer.id)
            .bind(attempt)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn dead_letter(
        &self,
        consumer: &ConsumerRef,
        sequence: i64,
        attempt: i64,
        dead: &EncodedMessage<'_>,
        now: i64,
    ) -> Outcome<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(sql::ACK)
            .bind(consumer.subscription_id)
            .bind(sequence)
            .bind(consumer.id)
            .bind(attempt)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        append_in(&mut tx, dead, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn heartbeat(&self, consumer: &ConsumerRef, now: i64, lease_until: i64) -> Outcome<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(sql::HEARTBEAT)
            .bind(lease_until)
            .bind(consumer.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn detach(&self, consumer: &ConsumerRef) -> Outcome<()> {
        let mut tx = self.begin().await?;
        sqlx::query(sql::UNREGISTER)
            .bind(consumer.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(sql::RELEASE)
            .bind(consumer.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn purge(&self, cutoff: i64) -> Outcome<u64> {
        let done = sqlx::query(sql::PURGE)
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    fn listen(&self, _wakers: Arc<Wakers>) -> Option<JoinHandle<()>> {
        None
    }
}

/// The durable transport on SQLite: a [`Publisher`] and [`Subscriber`] whose topics and
/// subscriptions live in the database (see the [module docs](crate::transport) for the tables,
/// the delivery protocol and its guarantees).
///
/// Build it on the pool of a migrated [`SqliteStore`](crate::SqliteStore) (its connection
/// settings — WAL, busy timeout — are the ones the transport needs), or with
/// [`open`](Self::open). Consumers in this process wake as soon as a publish commits; other
/// processes on the same file find new messages within the poll interval. Clones share the
/// transport.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> seedwork::Result<()> {
/// use seedwork::messaging::{Envelope, Message, Publisher, Subscriber, SubscriptionOptions};
/// use seedwork_sqlx::SqliteTransport;
///
/// # let dir = std::env::temp_dir().join(format!("seedwork-transport-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).ok();
/// # let path = dir.join("bus.db");
/// let transport = SqliteTransport::open(path.to_str().unwrap()).await?;
/// let mut consumer = transport.subscribe(SubscriptionOptions::new("orders", "billing")).await?;
/// let message = Message {
///     topic: "orders".into(),
///     key: Some("order-1".into()),
///     envelope: Envelope::new("OrderPlaced", "v1", "shop", serde_json::json!({"total": 3})),
///     properties: Default::default(),
/// };
/// transport.publish(&message).await?;
/// let delivery = consumer.receive().await?;
/// assert_eq!(delivery.message, message);
/// consumer.ack(&delivery).await?;
/// # drop(consumer);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SqliteTransport {
    core: Transport,
}

impl SqliteTransport {
    /// A transport on `pool`, which must be migrated (see [`open`](Self::open)).
    pub fn new(pool: SqlitePool) -> Self {
        SqliteTransport::with_settings(pool, TransportSettings::default())
    }

    /// A transport on `pool` with explicit settings.
    pub fn with_settings(pool: SqlitePool, settings: TransportSettings) -> Self {
        SqliteTransport {
            core: Transport::new(Box::new(SqliteBackend { pool }), settings),
        }
    }

    /// Opens (creating if missing) and migrates the database at `url` as
    /// [`SqliteStore::open`](crate::SqliteStore::open) does, and builds a transport on it.
    pub async fn open(url: &str) -> Result<Self> {
        let store = crate::SqliteStore::open(url).await?;
        Ok(SqliteTransport::new(store.pool().clone()))
    }

    /// Deletes messages published more than `older_than` ago from the topic log, except those
    /// a subscription has not yet acknowledged; returns how many went. Without it the log is
    /// kept for good: run it now and then (e.g. daily, keeping a few days for inspection).
    pub async fn purge_log(&self, older_than: Duration) -> Result<u64> {
        self.core.purge_log(older_than).await
    }
}

#[async_trait]
impl Publisher for SqliteTransport {
    async fn publish(&self, message: &Message) -> Result<()> {
        self.core.publish(message).await
    }
}

#[async_trait]
impl Subscriber for SqliteTransport {
    async fn subscribe(&self, options: SubscriptionOptions) -> Result<Box<dyn Consumer>> {
        Ok(Box::new(self.core.subscribe(options).await?))
    }
}
