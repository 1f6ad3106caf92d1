//! The transport on PostgreSQL: claims of one subscription lock its row `FOR NO KEY UPDATE`,
//! so they are serialised across processes (claims of other subscriptions run in parallel, and
//! publishes, whose foreign-key checks take only `KEY SHARE` locks, are not held up); a publish
//! sends `NOTIFY seedwork_transport` with its commit, and every transport `LISTEN`s, so
//! consumers in any process wake at once. The operations are the shared ones (its statements
//! are in `src/postgres/sql.rs`); this module adds the listener the dialect starts
//! ([`Dialect::spawn_listener`](crate::dialect::Dialect::spawn_listener)).

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::task::JoinHandle;

use seedwork::Result;

use super::{SqlTransport, Wakers};
use crate::postgres::Postgres;

/// The channel publishes notify (the `notify` statement in `src/postgres/sql.rs` names it) and
/// every transport listens on.
pub(crate) const CHANNEL: &str = "seedwork_transport";

/// Starts [`listen`] on the current runtime, if there is one.
pub(crate) fn spawn_listener(pool: &PgPool, wakers: Arc<Wakers>) -> Option<JoinHandle<()>> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    Some(runtime.spawn(listen(pool.clone(), wakers)))
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

/// The durable transport on PostgreSQL: a [`Publisher`](seedwork::messaging::Publisher) and
/// [`Subscriber`](seedwork::messaging::Subscriber) whose topics and subscriptions live in the
/// database (see the [module docs](crate::transport) for the tables, the delivery protocol and
/// its guarantees); [`SqlTransport`] on the [`Postgres`] dialect.
///
/// Build it on the pool of a migrated [`PostgresStore`](crate::PostgresStore), or with
/// [`open`](PostgresTransport::open). Consumers in any process wake as soon as a publish
/// commits (the transport keeps one extra connection `LISTEN`ing while it has consumers); they
/// also poll, in case a notification is lost. Clones share the transport.
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
pub type PostgresTransport = SqlTransport<Postgres>;

impl SqlTransport<Postgres> {
    /// Connects to and migrates the database at `url` as
    /// [`PostgresStore::open`](crate::PostgresStore::open) does, and builds a transport on it.
    pub async fn open(url: &str) -> Result<Self> {
        let store = crate::PostgresStore::open(url).await?;
        Ok(PostgresTransport::new(store.pool().clone()))
    }
}

#[cfg(test)]
mod tests {
    use crate::dialect::Dialect;
    use crate::postgres::Postgres;

    /// The channel is a literal in two statements: detaches send `notify`, publishes send it
    /// inside `append_many`.
    #[test]
    fn publishes_notify_the_channel_the_listener_listens_on() {
        let channel = format!("pg_notify('{}'", super::CHANNEL);
        let notify = Postgres::TRANSPORT.notify.unwrap_or_default();
        assert!(notify.contains(&channel), "{notify}");
        let append = Postgres::TRANSPORT.append_many;
        assert!(append.contains(&channel), "{append}");
    }
}
