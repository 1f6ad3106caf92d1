//! The transport on PostgreSQL: claims of one subscription lock its row `FOR NO KEY UPDATE`,
//! so they are serialised across processes (claims of other subscriptions run in parallel, and
//! publishes, whose foreign-key checks take only `KEY SHARE` locks, are not held up); a publish
//! sends `NOTIFY seedwork_transport` with its commit, and every transport `LISTEN`s, so
//! consumers in any process wake at once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgListener;
use sqlx::{PgPool, Row};
use tokio::task::JoinHandle;

use seedwork::messaging::{Consumer, Message, Publisher, Subscriber, SubscriptionOptions};
use seedwork::Result;

use super::{
    admit, choose, kind_name, parse_kind, Backend, Choice, Claimed, ConsumerRef, EncodedMessage,
    HeadRow, Outcome, StoredMessage, Transport, TransportSettings, Wakers,
};

/// The channel publishes notify and every transport listens on.
const CHANNEL: &str = "seedwork_transport";

mod sql {
    pub(super) const APPEND: &str = "INSERT INTO seedwork_topic_log \
        (topic, message_key, envelope, properties, published_at) \
        VALUES ($1, $2, $3::jsonb, $4::jsonb, $5) RETURNING sequence";
    pub(super) const FAN_OUT: &str = "INSERT INTO seedwork_subscription_messages \
        (subscription_id, sequence, message_key) \
        SELECT id, $1, $2 FROM seedwork_subscriptions WHERE topic = $3";
    pub(super) const NOTIFY: &str = "SELECT pg_notify($1, $2)";
    pub(super) const CREATE_SUBSCRIPTION: &str = "INSERT INTO seedwork_subscriptions \
        (topic, name, kind, created_sequence, created_at) \
        VALUES ($1, $2, $3, (SELECT COALESCE(MAX(sequence), 0) FROM seedwork_topic_log), $4) \
        ON CONFLICT (topic, name) DO NOTHING";
    /// Locks the subscription: attaches and claims of one subscription go one at a time.
    pub(super) const SUBSCRIPTION: &str = "SELECT id, kind FROM seedwork_subscriptions \
        WHERE topic = $1 AND name = $2 FOR NO KEY UPDATE";
    pub(super) const LOCK_SUBSCRIPTION: &str =
        "SELECT id FROM seedwork_subscriptions WHERE id = $1 FOR NO KEY UPDATE";
    pub(super) const FORGET_EXPIRED: &str =
        "DELETE FROM seedwork_consumers WHERE subscription_id = $1 AND lease_until <= $2";
    pub(super) const COUNT_CONSUMERS: &str =
        "SELECT COUNT(*) FROM seedwork_consumers WHERE subscription_id = $1";
    pub(super) const SET_KIND: &str = "UPDATE seedwork_subscriptions SET kind = $1 WHERE id = $2";
    pub(super) const REGISTER: &str = "INSERT INTO seedwork_consumers \
        (subscription_id, attached_at, lease_until) VALUES ($1, $2, $3) RETURNING id";
    pub(super) const LIVE_CONSUMERS: &str = "SELECT id FROM seedwork_consumers \
        WHERE subscription_id = $1 AND lease_until > $2 ORDER BY id";
    pub(super) const HEAD: &str = "SELECT sequence, message_key, visible_after, lease_owner \
        FROM seedwork_subscription_messages WHERE subscription_id = $1 \
        ORDER BY sequence LIMIT $2";
    pub(super) const LEASE: &str = "UPDATE seedwork_subscription_messages \
        SET lease_owner = $1, deliveries = deliveries + 1 \
        WHERE subscription_id = $2 AND sequence = $3 RETURNING deliveries";
    pub(super) const FETCH: &str = "SELECT sequence, topic, message_key, \
        envelope::text AS envelope, properties::text AS properties \
        FROM seedwork_topic_log WHERE sequence = $1";
    pub(super) const ACK: &str = "DELETE FROM seedwork_subscription_messages \
        WHERE subscription_id = $1 AND sequence = $2 AND lease_owner = $3 AND deliveries = $4";
    pub(super) const RETRY_LATER: &str = "UPDATE seedwork_subscription_messages \
        SET lease_owner = NULL, visible_after = $1 \
        WHERE subscription_id = $2 AND sequence = $3 AND lease_owner = $4 AND deliveries = $5";
    pub(super) const HEARTBEAT: &str = "UPDATE seedwork_consumers SET lease_until = $1 \
        WHERE id = $2 AND lease_until > $3";
    pub(super) const UNREGISTER: &str = "DELETE FROM seedwork_consumers WHERE id = $1";
    pub(super) const PURGE: &str = "DELETE FROM seedwork_topic_log WHERE published_at < $1 \
        AND NOT EXISTS (SELECT 1 FROM seedwork_subscription_messages m \
        WHERE m.sequence = seedwork_topic_log.sequence)";
    pub(super) const RELEASE: &str = "UPDATE seedwork_subscription_messages \
        SET lease_owner = NULL WHERE lease_owner = $1";
}

struct PostgresBackend {
    pool: PgPool,
}

impl PostgresBackend {
    async fn begin(
        &self,
    ) -> std::result::Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
    }
}

async fn append_in(
    tx: &mut sqlx::PgConnection,
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
    // Delivered to the listeners when (and only if) the transaction commits.
    sqlx::query(sql::NOTIFY)
        .bind(CHANNEL)
        .bind(message.topic)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

#[async_trait]
impl Backend for PostgresBackend {
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
        sqlx::query(sql::LOCK_SUBSCRIPTION)
            .bind(consumer.subscription_id)
            .fetch_optional(&mut *tx)
            .await?;
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
        sqlx::query(sql::NOTIFY)
            .bind(CHANNEL)
            .bind("")
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

    fn listen(&self, wakers: Arc<Wakers>) -> Option<JoinHandle<()>> {
        let pool = self.pool.clone();
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        Some(runtime.spawn(listen(pool, wakers)))
    }
}

/// Forwards notifications on [`CHANNEL`] to the consumers of the topic they name (all of them
/// for an empty payload), reconnecting after failures; consumers poll meanwhile.
async fn listen(pool: PgPool, wakers: Arc<Wakers>) {
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(CHANNEL).await {
                Ok(()) => {
                    // Anything published while not listening is found by this wake-up.
                    wakers.wake_all();
                    loop {
                        match listener.recv().await {
                            Ok(notification) => match notification.payload() {
                                "" => wakers.wake_all(),
                                topic => wakers.wake(topic),
                            },
                            Err(error) => {
                                tracing::warn!(?error, "transport listener failed");
                                break;
                            }
                        }
                    }
                }
                Err(error) => tracing::warn!(?error, "transport LISTEN failed"),
            },
            Err(error) => tracing::warn!(?error, "transport listener could not connect"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The durable transport on SQLite: a [`Publisher`] and [`Subscriber`] whose topics and
/// subscriptions live in the database (see the [module docs](crate::transport) for the tables,
/// the delivery protocol and its guarantees).
///
/// Build it on the pool of a migrated [`PostgresStore`](crate::PostgresStore), or with
/// [`open`](Self::open). Consumers in any process wake as soon as a publish commits (the
/// transport keeps one extra connection `LISTEN`ing while it has consumers); they also poll,
/// in case a notification is lost. Clones share the transport.
///
/// ```no_run
/// # async fn run() -> seedwork::Result<()> {
/// use seedwork::messaging::{Publisher, Subscriber, SubscriptionOptions};
/// use seedwork_sqlx::PostgresTransport;
///
/// let transport = PostgresTransport::open("postgres://app:secret@db/app").await?;
/// let mut consumer = transport.subscribe(SubscriptionOptions::new("orders", "billing")).await?;
/// let delivery = consumer.receive().await?;
/// consumer.ack(&delivery).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PostgresTransport {
    core: Transport,
}

impl PostgresTransport {
    /// A transport on `pool`, which must be migrated (see [`open`](Self::open)).
    pub fn new(pool: PgPool) -> Self {
        PostgresTransport::with_settings(pool, TransportSettings::default())
    }

    /// A transport on `pool` with explicit settings.
    pub fn with_settings(pool: PgPool, settings: TransportSettings) -> Self {
        PostgresTransport {
            core: Transport::new(Box::new(PostgresBackend { pool }), settings),
        }
    }

    /// Connects to and migrates the database at `url` as
    /// [`PostgresStore::open`](crate::PostgresStore::open) does, and builds a transport on it.
    pub async fn open(url: &str) -> Result<Self> {
        let store = crate::PostgresStore::open(url).await?;
        Ok(PostgresTransport::new(store.pool().clone()))
    }

    /// Deletes messages published more than `older_than` ago from the topic log, except those
    /// a subscription has not yet acknowledged; returns how many went. Without it the log is
    /// kept for good: run it now and then (e.g. daily, keeping a few days for inspection).
    pub async fn purge_log(&self, older_than: Duration) -> Result<u64> {
        self.core.purge_log(older_than).await
    }
}

#[async_trait]
impl Publisher for PostgresTransport {
    async fn publish(&self, message: &Message) -> Result<()> {
        self.core.publish(message).await
    }
}

#[async_trait]
impl Subscriber for PostgresTransport {
    async fn subscribe(&self, options: SubscriptionOptions) -> Result<Box<dyn Consumer>> {
        Ok(Box::new(self.core.subscribe(options).await?))
    }
}
