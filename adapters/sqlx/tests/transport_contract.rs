//! The durable transport: the broker contract suite on SQLite (a fresh database file per test)
//! and on PostgreSQL (a fresh schema per test; needs a server: `scripts/services up`, or
//! `SEEDWORK_POSTGRES_URL`), plus what the suite does not cover: durability across a restart
//! and wake-ups across processes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use seedwork::messaging::{Consumer, Message, Publisher, Subscriber, SubscriptionOptions};
use seedwork::testing::contract::broker::{
    expect_delivery, expect_quiet, n_of, ping, unique_topic,
};
use seedwork_sqlx::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use seedwork_sqlx::sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions,
};
use seedwork_sqlx::sqlx::Connection;

mod support;
use seedwork_sqlx::{
    PostgresStore, PostgresTransport, SqliteStore, SqliteTransport, TransportSettings,
};
use support::postgres::fresh_schema;

/// A transport together with what must outlive it (the temp dir of its database file).
struct Guarded<T> {
    transport: T,
    _guard: Option<tempfile::TempDir>,
}

#[async_trait]
impl<T: Publisher> Publisher for Guarded<T> {
    async fn publish(&self, message: &Message) -> seedwork::Result<()> {
        self.transport.publish(message).await
    }
}

#[async_trait]
impl<T: Subscriber> Subscriber for Guarded<T> {
    async fn subscribe(&self, options: SubscriptionOptions) -> seedwork::Result<Box<dyn Consumer>> {
        self.transport.subscribe(options).await
    }
    async fn unsubscribe(&self, topic: &str, subscription: &str) -> seedwork::Result<()> {
        self.transport.unsubscribe(topic, subscription).await
    }
}

async fn sqlite_store(path: &std::path::Path) -> SqliteStore {
    SqliteStore::open(path.to_str().expect("utf-8 path"))
        .await
        .expect("open sqlite")
}

async fn fresh_sqlite() -> Guarded<SqliteTransport> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_store(&dir.path().join("transport.db")).await;
    Guarded {
        transport: SqliteTransport::new(store.pool().clone()),
        _guard: Some(dir),
    }
}

async fn postgres_pool(options: PgConnectOptions) -> sqlx::PgPool {
    PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .expect("connect")
}

async fn fresh_postgres() -> Guarded<PostgresTransport> {
    let pool = postgres_pool(fresh_schema().await).await;
    PostgresStore::from_pool(pool.clone())
        .migrate()
        .await
        .expect("migrate");
    Guarded {
        transport: PostgresTransport::new(pool),
        _guard: None,
    }
}

/// Two transports on two pools of one database, as two processes would have: publishes and
/// subscriptions alternate between them, so every check of the suite runs across "processes"
/// (consumers of one subscription on both, publisher and consumer apart).
struct TwoProcesses<T> {
    sides: [T; 2],
    next_publish: AtomicUsize,
    next_subscribe: AtomicUsize,
    _guard: Option<tempfile::TempDir>,
}

impl<T> TwoProcesses<T> {
    fn side(&self, counter: &AtomicUsize) -> &T {
        &self.sides[counter.fetch_add(1, Ordering::SeqCst) % 2]
    }
}

#[async_trait]
impl<T: Publisher> Publisher for TwoProcesses<T> {
    async fn publish(&self, message: &Message) -> seedwork::Result<()> {
        self.side(&self.next_publish).publish(message).await
    }
}

#[async_trait]
impl<T: Subscriber> Subscriber for TwoProcesses<T> {
    async fn subscribe(&self, options: SubscriptionOptions) -> seedwork::Result<Box<dyn Consumer>> {
        self.side(&self.next_subscribe).subscribe(options).await
    }
    async fn unsubscribe(&self, topic: &str, subscription: &str) -> seedwork::Result<()> {
        self.side(&self.next_subscribe)
            .unsubscribe(topic, subscription)
            .await
    }
}

async fn two_sqlite_processes() -> TwoProcesses<SqliteTransport> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("transport.db");
    let a = sqlite_store(&path).await;
    let b = sqlite_store(&path).await;
    TwoProcesses {
        sides: [
            SqliteTransport::new(a.pool().clone()),
            SqliteTransport::new(b.pool().clone()),
        ],
        next_publish: AtomicUsize::new(0),
        next_subscribe: AtomicUsize::new(0),
        _guard: Some(dir),
    }
}

async fn two_postgres_processes() -> TwoProcesses<PostgresTransport> {
    let options = fresh_schema().await;
    let a = postgres_pool(options.clone()).await;
    PostgresStore::from_pool(a.clone())
        .migrate()
        .await
        .expect("migrate");
    let b = postgres_pool(options).await;
    TwoProcesses {
        sides: [PostgresTransport::new(a), PostgresTransport::new(b)],
        next_publish: AtomicUsize::new(0),
        next_subscribe: AtomicUsize::new(0),
        _guard: None,
    }
}

mod sqlite {
    use super::*;

    seedwork::broker_contract_tests!(broker = fresh_sqlite());
}

mod sqlite_two_processes {
    use super::*;

    seedwork::broker_contract_tests!(broker = two_sqlite_processes());
}

mod postgres {
    use super::*;

    seedwork::broker_contract_tests!(
        #[ignore = "needs PostgreSQL: scripts/services up"]
        broker = fresh_postgres()
    );
}

mod postgres_two_processes {
    use super::*;

    seedwork::broker_contract_tests!(
        #[ignore = "needs PostgreSQL: scripts/services up"]
        broker = two_postgres_processes()
    );
}

/// The log keeps what a subscription still needs and lets go of the rest.
async fn purge_keeps_unacknowledged_messages<B, F>(broker: &B, purge: impl Fn() -> F)
where
    B: Publisher + Subscriber,
    F: std::future::Future<Output = seedwork::Result<u64>>,
{
    let topic = unique_topic("purge");
    let mut consumer = broker
        .subscribe(SubscriptionOptions::new(&topic, "s"))
        .await
        .expect("subscribe");
    broker
        .publish(&ping(&topic, 1, None))
        .await
        .expect("publish");
    broker
        .publish(&ping(&topic, 2, None))
        .await
        .expect("publish");
    let first = expect_delivery(&mut *consumer).await;
    assert_eq!(n_of(&first), 1);
    consumer.ack(&first).await.expect("ack");
    let second = expect_delivery(&mut *consumer).await;
    assert_eq!(n_of(&second), 2);
    consumer.nack(&second).await.expect("nack");
    // The next claim applies the acknowledgement (and takes the second again).
    let again = expect_delivery(&mut *consumer).await;
    assert_eq!(n_of(&again), 2);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        purge().await.expect("purge"),
        1,
        "only the acknowledged message goes; the one in hand stays"
    );
    consumer.ack(&again).await.expect("ack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_purge_keeps_unacknowledged_messages() {
    let broker = fresh_sqlite().await;
    purge_keeps_unacknowledged_messages(&broker, || broker.transport.purge_log(Duration::ZERO))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/services up"]
async fn postgres_purge_keeps_unacknowledged_messages() {
    let broker = fresh_postgres().await;
    purge_keeps_unacknowledged_messages(&broker, || broker.transport.purge_log(Duration::ZERO))
        .await;
}

/// Drop the transport and its pool (a crash: the consumer never settles nor detaches), reopen
/// the same file: the unacked message comes back with its attempt count kept, the acked one
/// does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_state_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("restart.db");
    let settings = TransportSettings {
        consumer_lease: Duration::from_millis(600),
        ..TransportSettings::default()
    };
    let topic = unique_topic("restart");
    let options = SubscriptionOptions::new(&topic, "s");
    {
        let store = sqlite_store(&path).await;
        let transport = SqliteTransport::with_settings(store.pool().clone(), settings.clone());
        let mut consumer = transport
            .subscribe(options.clone())
            .await
            .expect("subscribe");
        transport
            .publish(&ping(&topic, 1, None))
            .await
            .expect("publish");
        transport
            .publish(&ping(&topic, 2, None))
            .await
            .expect("publish");
        let first = expect_delivery(&mut *consumer).await;
        assert_eq!(n_of(&first), 1);
        consumer.ack(&first).await.expect("ack");
        let second = expect_delivery(&mut *consumer).await;
        assert_eq!((n_of(&second), second.attempt), (2, 1));
        consumer.nack(&second).await.expect("nack");
        let again = expect_delivery(&mut *consumer).await;
        assert_eq!((n_of(&again), again.attempt), (2, 2));
        // The crash: the pool goes away under the consumer, which cannot unregister.
        store.close().await;
        drop(consumer);
        drop(transport);
    }
    let store = sqlite_store(&path).await;
    let transport = SqliteTransport::with_settings(store.pool().clone(), settings);
    let mut consumer = transport.subscribe(options).await.expect("subscribe");
    let redelivered = expect_delivery(&mut *consumer).await;
    assert_eq!(n_of(&redelivered), 2, "the unacked message comes back");
    assert_eq!(redelivered.attempt, 3, "attempts are durable");
    consumer.ack(&redelivered).await.expect("ack");
    expect_quiet(&mut *consumer).await;
}

/// Publishes three messages while `consumer` waits idle, each received within a bounded
/// deadline far shorter than the poll interval: only a wake-up can be that fast.
async fn assert_woken_by_publishes(
    publisher: &dyn Publisher,
    consumer: &mut dyn Consumer,
    topic: &str,
) {
    for n in 0..3 {
        // The consumer is idle, waiting, when the message is published: its first look found
        // nothing, and its next poll is a minute away.
        let receive = tokio::time::timeout(Duration::from_secs(3), consumer.receive());
        let publish = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            publisher
                .publish(&ping(topic, n, None))
                .await
                .expect("publish");
        };
        let (received, ()) = tokio::join!(receive, publish);
        let delivery = received.expect("woken within 3 s").expect("receive");
        assert_eq!(n_of(&delivery), n);
        consumer.ack(&delivery).await.expect("ack");
    }
}

/// A publish wakes a waiting consumer of the same transport at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wakes_consumers_of_the_same_process() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_store(&dir.path().join("wake.db")).await;
    let transport = SqliteTransport::with_settings(
        store.pool().clone(),
        TransportSettings {
            poll_interval: Duration::from_secs(60),
            ..TransportSettings::default()
        },
    );
    let topic = unique_topic("wake");
    let mut consumer = transport
        .subscribe(SubscriptionOptions::new(&topic, "s"))
        .await
        .expect("subscribe");
    assert_woken_by_publishes(&transport, &mut *consumer, &topic).await;
}

/// Two transports on two pools (two processes, as far as the database can tell): a publish on
/// one wakes a consumer on the other at once, not after a poll interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/services up"]
async fn postgres_wakes_consumers_of_another_process() {
    let options = fresh_schema().await;
    let pool_a = postgres_pool(options.clone()).await;
    PostgresStore::from_pool(pool_a.clone())
        .migrate()
        .await
        .expect("migrate");
    let pool_b = postgres_pool(options).await;
    // Polling alone would take a minute: only a notification can be this fast.
    let slow_polling = TransportSettings {
        poll_interval: Duration::from_secs(60),
        ..TransportSettings::default()
    };
    let publisher = PostgresTransport::with_settings(pool_a, slow_polling.clone());
    let subscriber = PostgresTransport::with_settings(pool_b, slow_polling);
    let topic = unique_topic("wake");
    let mut consumer = subscriber
        .subscribe(SubscriptionOptions::new(&topic, "s"))
        .await
        .expect("subscribe");
    // Let the listener connect.
    expect_quiet(&mut *consumer).await;
    assert_woken_by_publishes(&publisher, &mut *consumer, &topic).await;
}

/// `Publisher::check` makes a round trip to the transport's database: `Ok` while it answers,
/// `Error::Unavailable` once its pool is closed.
#[tokio::test]
async fn check_reports_whether_the_database_answers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_store(&dir.path().join("transport.db")).await;
    let transport = SqliteTransport::new(store.pool().clone());
    transport.check().await.expect("the database answers");
    store.pool().close().await;
    let error = transport.check().await.expect_err("the pool is closed");
    assert!(error.is_transient(), "{error:?}");
}

/// The three ways a settlement can fail to reach the database, for
/// [`a_settlement_the_database_did_not_take_is_retried`].
#[derive(Debug, Clone, Copy)]
enum Settle {
    Ack,
    Nack,
    Reject,
}

/// A transport whose database is busy for as long as [`Locked::hold`] holds SQLite's writer
/// lock from another connection: each write fails after a 50 ms busy timeout.
struct Locked {
    transport: SqliteTransport,
    url: String,
    _dir: tempfile::TempDir,
}

impl Locked {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("transport.db");
        // Creates and migrates the file.
        sqlite_store(&path).await.pool().close().await;
        let url = format!("sqlite://{}", path.display());
        let options: SqliteConnectOptions = url.parse().expect("sqlite url");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(
                options
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_millis(50)),
            )
            .await
            .expect("open pool");
        let settings = TransportSettings {
            consumer_lease: Duration::from_secs(30),
            ..TransportSettings::default()
        };
        Locked {
            transport: SqliteTransport::with_settings(pool, settings),
            url,
            _dir: dir,
        }
    }

    /// Takes the writer lock until the returned connection commits.
    async fn hold(&self) -> SqliteConnection {
        let mut connection = SqliteConnection::connect(&self.url)
            .await
            .expect("locker connection");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut connection)
            .await
            .expect("take the writer lock");
        connection
    }
}

async fn release(mut locker: SqliteConnection) {
    sqlx::query("COMMIT")
        .execute(&mut locker)
        .await
        .expect("release the writer lock");
}

/// A settlement that fails because the database did not take it (here: busy) is kept by the
/// consumer and applied before (a nack, a reject) or with (an ack) its next claim. Forgotten, the row would stay leased to this
/// consumer — alive, so nobody would take it over — and the key's later messages would wait
/// behind it for good.
async fn a_settlement_the_database_did_not_take_is_retried(settle: Settle) {
    let locked = Locked::new().await;
    let transport = &locked.transport;
    let topic = unique_topic("unsettled");
    let dead_letters = format!("{topic}-dead");
    let options = SubscriptionOptions::new(&topic, "s")
        .retry(seedwork::messaging::RetryPolicy {
            max_deliveries: 5,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(20),
            multiplier: 1,
        })
        .dead_letter_topic(&dead_letters);
    let mut graveyard = transport
        .subscribe(SubscriptionOptions::new(&dead_letters, "inspect"))
        .await
        .expect("subscribe to the dead letters");
    let mut consumer = transport.subscribe(options).await.expect("subscribe");
    transport
        .publish(&ping(&topic, 1, Some("k")))
        .await
        .expect("publish 1");
    transport
        .publish(&ping(&topic, 2, Some("k")))
        .await
        .expect("publish 2");
    let first = expect_delivery(&mut *consumer).await;
    assert_eq!(n_of(&first), 1);

    let locker = locked.hold().await;
    let error = match settle {
        // An ack goes with the next claim: that claim is what fails.
        Settle::Ack => {
            consumer.ack(&first).await.expect("an ack is taken at once");
            consumer.receive().await.map(|_| ())
        }
        Settle::Nack => consumer.nack(&first).await,
        Settle::Reject => consumer.reject(&first, "refused").await,
    }
    .expect_err("the database is locked");
    assert!(error.is_transient(), "{settle:?}: {error:?}");
    release(locker).await;

    // What the settlement would have done happens now; then the key moves on.
    let mut seen = Vec::new();
    loop {
        let delivery = expect_delivery(&mut *consumer).await;
        seen.push(n_of(&delivery));
        consumer.ack(&delivery).await.expect("ack");
        if n_of(&delivery) == 2 {
            break;
        }
    }
    let expected = match settle {
        Settle::Ack | Settle::Reject => vec![2],
        Settle::Nack => vec![1, 2],
    };
    assert_eq!(seen, expected, "{settle:?}: deliveries after the failure");
    if matches!(settle, Settle::Reject) {
        let dead = expect_delivery(&mut *graveyard).await;
        assert_eq!(n_of(&dead), 1);
        graveyard.ack(&dead).await.expect("ack the dead letter");
    }
    expect_quiet(&mut *consumer).await;
    expect_quiet(&mut *graveyard).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_the_database_did_not_take_is_retried() {
    a_settlement_the_database_did_not_take_is_retried(Settle::Ack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nack_the_database_did_not_take_is_retried() {
    a_settlement_the_database_did_not_take_is_retried(Settle::Nack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reject_the_database_did_not_take_is_retried() {
    a_settlement_the_database_did_not_take_is_retried(Settle::Reject).await;
}

/// A claim takes what is due at once (one row per key); `ready` hands out the rest of it
/// without a round trip, and the acknowledgements go with the next claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_hands_out_what_the_claim_took() {
    let broker = fresh_sqlite().await;
    let topic = unique_topic("ready");
    let mut consumer = broker
        .subscribe(SubscriptionOptions::new(&topic, "s"))
        .await
        .expect("subscribe");
    for (n, key) in [(1, "a"), (2, "a"), (3, "b"), (4, "c")] {
        broker
            .publish(&ping(&topic, n, Some(key)))
            .await
            .expect("publish");
    }
    let first = expect_delivery(&mut *consumer).await;
    let mut at_hand = vec![n_of(&first)];
    let mut deliveries = vec![first];
    while let Some(delivery) = consumer.ready() {
        at_hand.push(n_of(&delivery));
        deliveries.push(delivery);
    }
    assert_eq!(at_hand, vec![1, 3, 4], "2 waits behind 1, of the same key");
    for delivery in &deliveries {
        consumer.ack(delivery).await.expect("ack");
    }
    let second = expect_delivery(&mut *consumer).await;
    assert_eq!(n_of(&second), 2);
    assert!(consumer.ready().is_none());
    consumer.ack(&second).await.expect("ack");
    expect_quiet(&mut *consumer).await;
}

/// How many subscriptions named `name` the database holds.
async fn sqlite_subscriptions_named(pool: &sqlx::SqlitePool, name: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM seedwork_subscriptions WHERE name = ?")
        .bind(name)
        .fetch_one(pool)
        .await
        .expect("count")
}

/// As [`sqlite_subscriptions_named`], on PostgreSQL.
async fn postgres_subscriptions_named(pool: &sqlx::PgPool, name: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM seedwork_subscriptions WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .expect("count")
}

/// Waits, at most 10 s, until `count` reports 0.
async fn until_gone<F: std::future::Future<Output = i64>>(count: impl Fn() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = count().await;
        if left == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{left} subscription row(s) still there 10 s after the last consumer went"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A non-durable subscription stays while any consumer is attached (what the first held goes
/// to the second), goes with the last one, rows and all, and keeps nothing published while
/// none is attached.
async fn non_durable_subscription_goes_with_its_last_consumer<B, F>(
    broker: &B,
    live_rows: impl Fn() -> F,
) where
    B: Publisher + Subscriber,
    F: std::future::Future<Output = i64>,
{
    let topic = unique_topic("non-durable");
    let live = || SubscriptionOptions::new(&topic, "live").durable(false);
    let mut first = broker.subscribe(live()).await.expect("subscribe");
    let mut second = broker.subscribe(live()).await.expect("subscribe");
    assert_eq!(live_rows().await, 1);
    broker
        .publish(&ping(&topic, 1, None))
        .await
        .expect("publish");
    let held = expect_delivery(&mut *first).await;
    assert_eq!((n_of(&held), held.attempt), (1, 1));
    drop(first);
    let released = expect_delivery(&mut *second).await;
    assert_eq!(
        (n_of(&released), released.attempt),
        (1, 2),
        "the other consumer keeps the subscription and gets what the first held"
    );
    assert_eq!(live_rows().await, 1);
    drop(second);
    until_gone(&live_rows).await;

    broker
        .publish(&ping(&topic, 2, None))
        .await
        .expect("publish");
    let mut again = broker.subscribe(live()).await.expect("subscribe");
    expect_quiet(&mut *again).await;
    broker
        .publish(&ping(&topic, 3, None))
        .await
        .expect("publish");
    let delivery = expect_delivery(&mut *again).await;
    assert_eq!((n_of(&delivery), delivery.attempt), (3, 1));
    again.ack(&delivery).await.expect("ack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_non_durable_subscription_goes_with_its_last_consumer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_store(&dir.path().join("live.db")).await;
    let transport = SqliteTransport::new(store.pool().clone());
    non_durable_subscription_goes_with_its_last_consumer(&transport, || {
        sqlite_subscriptions_named(store.pool(), "live")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/services up"]
async fn postgres_non_durable_subscription_goes_with_its_last_consumer() {
    let pool = postgres_pool(fresh_schema().await).await;
    PostgresStore::from_pool(pool.clone())
        .migrate()
        .await
        .expect("migrate");
    let transport = PostgresTransport::new(pool.clone());
    non_durable_subscription_goes_with_its_last_consumer(&transport, || {
        postgres_subscriptions_named(&pool, "live")
    })
    .await;
}

/// The lease of the consumers of the abandoned-subscription tests.
const SHORT_LEASE: Duration = Duration::from_millis(300);

/// What the process that dies leaves: a non-durable subscription `live` and a durable one
/// `kept` of `topic`, each with a consumer attached, and one message each holds.
async fn attach_live_and_kept<T: Publisher + Subscriber>(
    transport: &T,
    topic: &str,
) -> [Box<dyn Consumer>; 2] {
    let live = transport
        .subscribe(SubscriptionOptions::new(topic, "live").durable(false))
        .await
        .expect("subscribe");
    let kept = transport
        .subscribe(SubscriptionOptions::new(topic, "kept"))
        .await
        .expect("subscribe");
    transport
        .publish(&ping(topic, 1, None))
        .await
        .expect("publish");
    [live, kept]
}

/// After the dead process's leases ran out: `live` is still there until someone attaches, and
/// the next attach of any consumer removes it, leaving `kept` and its message.
/// `rows(name)` counts the subscriptions named so, `pending()` every subscription's messages.
async fn the_next_attach_removes_live<T, F, G>(
    transport: &T,
    rows: impl Fn(&'static str) -> F,
    pending: impl Fn() -> G,
) where
    T: Subscriber,
    F: std::future::Future<Output = i64>,
    G: std::future::Future<Output = i64>,
{
    // The dead consumers' leases run out (they were renewed at most once before the crash).
    tokio::time::sleep(SHORT_LEASE * 2).await;
    assert_eq!(
        rows("live").await,
        1,
        "nothing removes it until someone attaches"
    );
    let _other = transport
        .subscribe(SubscriptionOptions::new(unique_topic("other"), "other"))
        .await
        .expect("subscribe");
    assert_eq!(rows("live").await, 0);
    assert_eq!(rows("kept").await, 1);
    assert_eq!(
        pending().await,
        1,
        "only the durable subscription's message is left"
    );
}

/// The query counting every subscription's messages.
const PENDING: &str = "SELECT COUNT(*) FROM seedwork_subscription_messages";

/// A process dies with a non-durable and a durable subscription attached (its pool goes away
/// under the consumers, which cannot detach); once their leases have run out, the next attach
/// of any consumer removes the non-durable one and leaves the durable one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_abandoned_non_durable_subscription_goes_at_the_next_attach() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("abandoned.db");
    let settings = TransportSettings {
        consumer_lease: SHORT_LEASE,
        ..TransportSettings::default()
    };
    let topic = unique_topic("abandoned");
    {
        let store = sqlite_store(&path).await;
        let transport = SqliteTransport::with_settings(store.pool().clone(), settings.clone());
        let consumers = attach_live_and_kept(&transport, &topic).await;
        store.close().await;
        drop((consumers, transport));
    }
    let store = sqlite_store(&path).await;
    let transport = SqliteTransport::with_settings(store.pool().clone(), settings);
    the_next_attach_removes_live(
        &transport,
        |name| sqlite_subscriptions_named(store.pool(), name),
        || async {
            let pending: i64 = sqlx::query_scalar(PENDING)
                .fetch_one(store.pool())
                .await
                .expect("count");
            pending
        },
    )
    .await;
}

/// As the SQLite test above, on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/services up"]
async fn postgres_an_abandoned_non_durable_subscription_goes_at_the_next_attach() {
    let options = fresh_schema().await;
    let settings = TransportSettings {
        consumer_lease: SHORT_LEASE,
        ..TransportSettings::default()
    };
    let topic = unique_topic("abandoned");
    {
        let pool = postgres_pool(options.clone()).await;
        PostgresStore::from_pool(pool.clone())
            .migrate()
            .await
            .expect("migrate");
        let transport = PostgresTransport::with_settings(pool.clone(), settings.clone());
        let consumers = attach_live_and_kept(&transport, &topic).await;
        pool.close().await;
        drop((consumers, transport));
    }
    let pool = postgres_pool(options).await;
    let transport = PostgresTransport::with_settings(pool.clone(), settings);
    the_next_attach_removes_live(
        &transport,
        |name| postgres_subscriptions_named(&pool, name),
        || async {
            let pending: i64 = sqlx::query_scalar(PENDING)
                .fetch_one(&pool)
                .await
                .expect("count");
            pending
        },
    )
    .await;
}

/// Durability is fixed while the subscription exists: a durable one refuses a non-durable
/// consumer, and a non-durable one with a consumer refuses a durable one, with
/// [`seedwork::Error::Broker`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_durability_is_fixed_while_the_subscription_exists() {
    let broker = fresh_sqlite().await;
    let topic = unique_topic("durability");
    drop(
        broker
            .subscribe(SubscriptionOptions::new(&topic, "s"))
            .await
            .expect("subscribe"),
    );
    let refused = broker
        .subscribe(SubscriptionOptions::new(&topic, "s").durable(false))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(refused, seedwork::Error::Broker(_)) && refused.to_string().contains("is durable"),
        "{refused:?}"
    );
    let _live = broker
        .subscribe(SubscriptionOptions::new(&topic, "l").durable(false))
        .await
        .expect("subscribe");
    let refused = broker
        .subscribe(SubscriptionOptions::new(&topic, "l"))
        .await
        .err()
        .expect("refused");
    assert!(
        refused.to_string().contains("is non-durable"),
        "{refused:?}"
    );
}
