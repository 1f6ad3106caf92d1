//! The transport on SQLite: every transaction opens with `BEGIN IMMEDIATE` (the dialect's
//! [`BEGIN`](crate::dialect::Dialect::BEGIN)), so claims, publishes and settlements are
//! serialised by SQLite's single writer lock. The operations are the shared ones (its
//! statements are in `src/sqlite/sql.rs`); other processes on the file are not notified and
//! find new messages by polling.

use seedwork::Result;

use super::SqlTransport;
use crate::sqlite::Sqlite;

/// The durable transport on SQLite: a [`Publisher`](seedwork::messaging::Publisher) and
/// [`Subscriber`](seedwork::messaging::Subscriber) whose topics and subscriptions live in the
/// database (see the [module docs](crate::transport) for the tables, the delivery protocol and
/// its guarantees); [`SqlTransport`] on the [`Sqlite`] dialect.
///
/// Build it on the pool of a migrated [`SqliteStore`](crate::SqliteStore) (its connection
/// settings — WAL, busy timeout — are the ones the transport needs), or with
/// [`open`](SqliteTransport::open). Consumers in this process wake as soon as a publish
/// commits; other processes on the same file find new messages within the poll interval.
/// Clones share the transport.
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
pub type SqliteTransport = SqlTransport<Sqlite>;

impl SqlTransport<Sqlite> {
    /// Opens (creating if missing) and migrates the database at `url` as
    /// [`SqliteStore::open`](crate::SqliteStore::open) does, and builds a transport on it.
    pub async fn open(url: &str) -> Result<Self> {
        let store = crate::SqliteStore::open(url).await?;
        Ok(SqliteTransport::new(store.pool().clone()))
    }
}
