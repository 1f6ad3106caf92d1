//! Direct delivery (`SqlStore::direct_transport`): a committed transaction's outbox messages
//! reach the transport's consumers with no relay, in order per key; a rolled-back one's never
//! do; the outbox keeps nothing for a relay; and the commit wakes a waiting consumer at once
//! (the poll interval here is a minute, longer than any wait below). A transaction of many
//! messages on several topics, written in two statements, reaches every subscription whole, as
//! written, in order per key.

use std::time::Duration;

use seedwork::messaging::{
    Message, OutboxStore, Subscriber, SubscriptionKind, SubscriptionOptions,
};
use seedwork::testing::contract::broker::{
    expect_delivery, expect_quiet, n_of, ping, unique_topic,
};
use seedwork::uow::TransactionalStore;
use seedwork_sqlx::{PostgresStore, SqliteStore, TransportSettings};

mod support;

fn slow_polling() -> TransportSettings {
    TransportSettings {
        poll_interval: Duration::from_secs(60),
        ..TransportSettings::default()
    }
}

/// Commits `messages` in one transaction of `store` (or rolls it back).
async fn write(
    store: &dyn TransactionalStore,
    messages: Vec<seedwork::messaging::Message>,
    commit: bool,
) {
    let mut tx = store.begin().await.expect("begin");
    tx.append_outbox(messages).await.expect("append");
    if commit {
        tx.commit().await.expect("commit");
    } else {
        tx.rollback().await.expect("rollback");
    }
}

async fn committed_messages_arrive_without_a_relay(
    store: &dyn TransactionalStore,
    outbox: &dyn OutboxStore,
    transport: &dyn Subscriber,
) {
    let topic = unique_topic("direct");
    let mut consumer = transport
        .subscribe(SubscriptionOptions::new(&topic, "direct").kind(SubscriptionKind::Shared))
        .await
        .expect("subscribe");
    write(store, vec![ping(&topic, 1, Some("k"))], true).await;
    write(store, vec![ping(&topic, 2, Some("k"))], false).await;
    write(
        store,
        vec![ping(&topic, 3, Some("k")), ping(&topic, 4, Some("k"))],
        true,
    )
    .await;
    let mut received = Vec::new();
    for _ in 0..3 {
        let delivery = expect_delivery(&mut *consumer).await;
        received.push(n_of(&delivery));
        consumer.ack(&delivery).await.expect("ack");
    }
    assert_eq!(received, [1, 3, 4], "committed ones only, in order");
    expect_quiet(&mut *consumer).await;
    let left = outbox
        .claim("direct-test", 100, Duration::from_secs(30))
        .await
        .expect("claim");
    assert!(left.is_empty(), "nothing for a relay: {left:?}");
}

async fn a_commit_wakes_a_waiting_consumer(
    store: &dyn TransactionalStore,
    transport: &dyn Subscriber,
) {
    let topic = unique_topic("direct-wake");
    let mut consumer = transport
        .subscribe(SubscriptionOptions::new(&topic, "wake").kind(SubscriptionKind::Shared))
        .await
        .expect("subscribe");
    let waiting = expect_delivery(&mut *consumer);
    let committing = async {
        // Lets the consumer find nothing and wait first (ordering only; the assertion is the
        // bounded wait of `expect_delivery`, far shorter than the one-minute poll).
        tokio::time::sleep(Duration::from_millis(200)).await;
        write(store, vec![ping(&topic, 7, None)], true).await;
    };
    let (delivery, ()) = tokio::join!(waiting, committing);
    assert_eq!(n_of(&delivery), 7);
    consumer.ack(&delivery).await.expect("ack");
}

/// More messages than one claim takes (`TransportSettings::prefetch`), in one transaction.
const MANY: u32 = 300;

async fn a_transaction_of_many_messages_arrives_whole_in_order_per_key(
    store: &dyn TransactionalStore,
    transport: &dyn Subscriber,
) {
    let first = unique_topic("direct-many-a");
    let second = unique_topic("direct-many-b");
    let mut subscriptions = Vec::new();
    for (topic, name) in [(&first, "one"), (&first, "two"), (&second, "one")] {
        let consumer = transport
            .subscribe(SubscriptionOptions::new(topic, name).kind(SubscriptionKind::Shared))
            .await
            .expect("subscribe");
        subscriptions.push((topic.clone(), consumer));
    }
    // Every third message to the second topic; keys on even ones only; properties that need
    // escaping in the JSON list the statement binds.
    let messages: Vec<Message> = (0..MANY)
        .map(|n| {
            let topic = if n % 3 == 2 { &second } else { &first };
            let key = (n % 2 == 0).then(|| format!("k{}", n % 5));
            let mut message = ping(topic, n, key.as_deref());
            message
                .properties
                .insert("note".to_string(), format!("\"quoted\" \\ ñ {n}"));
            message
        })
        .collect();
    write(store, messages.clone(), true).await;
    for (topic, mut consumer) in subscriptions {
        let expected: Vec<&Message> = messages.iter().filter(|m| m.topic == topic).collect();
        let mut received = Vec::new();
        for _ in 0..expected.len() {
            let delivery = expect_delivery(&mut *consumer).await;
            consumer.ack(&delivery).await.expect("ack");
            received.push(delivery.message);
        }
        expect_quiet(&mut *consumer).await;
        // Order is kept per key (messages of different keys may be handed out in another
        // order); the messages of each key here were all written by the one transaction.
        for key in (0..5).map(|k| Some(format!("k{k}"))) {
            let sent: Vec<&Message> = expected.iter().copied().filter(|m| m.key == key).collect();
            let got: Vec<&Message> = received.iter().filter(|m| m.key == key).collect();
            assert_eq!(got, sent, "{topic}, key {key:?}: as written, in order");
        }
        let mut sent: Vec<&Message> = expected;
        let mut got: Vec<&Message> = received.iter().collect();
        sent.sort_by_key(|m| m.envelope.id.clone());
        got.sort_by_key(|m| m.envelope.id.clone());
        assert_eq!(got, sent, "{topic}: every message once, as written");
    }
}

async fn fresh_sqlite() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("direct.db");
    let store = SqliteStore::open(path.to_str().expect("utf-8 path"))
        .await
        .expect("open sqlite");
    (dir, store)
}

#[tokio::test]
async fn sqlite_committed_messages_arrive_without_a_relay() {
    let (_dir, store) = fresh_sqlite().await;
    let transport = store.direct_transport(slow_polling());
    committed_messages_arrive_without_a_relay(&store, &store, &transport).await;
}

#[tokio::test]
async fn sqlite_a_commit_wakes_a_waiting_consumer() {
    let (_dir, store) = fresh_sqlite().await;
    let transport = store.direct_transport(slow_polling());
    a_commit_wakes_a_waiting_consumer(&store.clone(), &transport).await;
}

#[tokio::test]
async fn sqlite_a_transaction_of_many_messages_arrives_whole_in_order_per_key() {
    let (_dir, store) = fresh_sqlite().await;
    let transport = store.direct_transport(slow_polling());
    a_transaction_of_many_messages_arrives_whole_in_order_per_key(&store, &transport).await;
}

#[tokio::test]
async fn every_clone_of_the_store_feeds_the_same_transport() {
    let (_dir, store) = fresh_sqlite().await;
    let clone = store.clone();
    let transport = store.direct_transport(slow_polling());
    let again = clone.direct_transport(TransportSettings::default());
    committed_messages_arrive_without_a_relay(&clone, &clone, &again).await;
    a_commit_wakes_a_waiting_consumer(&clone, &transport).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn postgres_committed_messages_arrive_without_a_relay() {
    let store: PostgresStore = support::postgres::fresh_store().await;
    let transport = store.direct_transport(slow_polling());
    committed_messages_arrive_without_a_relay(&store, &store, &transport).await;
    a_commit_wakes_a_waiting_consumer(&store, &transport).await;
    a_transaction_of_many_messages_arrives_whole_in_order_per_key(&store, &transport).await;
}

/// A unit of work committing a message to a topic whose non-durable subscription is being
/// deleted by its last detach, on PostgreSQL: the commit's append waits for the delete and,
/// once it commits, succeeds without that subscription (a plain read of the subscriptions
/// fanned out to the deleted one and failed its foreign key, and with it the unit of work).
/// The detach's delete is held open by hand so the two meet every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn postgres_a_commit_racing_the_last_detach_succeeds() {
    let store: PostgresStore = support::postgres::fresh_store().await;
    let transport = store.direct_transport(slow_polling());
    let topic = unique_topic("detach-race");
    let mut kept = transport
        .subscribe(SubscriptionOptions::new(&topic, "kept"))
        .await
        .expect("subscribe");
    let live = transport
        .subscribe(SubscriptionOptions::new(&topic, "live").durable(false))
        .await
        .expect("subscribe");
    let pool = store.pool().clone();

    // The last detach's delete, not yet committed.
    let mut detach = pool.begin().await.expect("begin");
    let deleted = sqlx::query("DELETE FROM seedwork_subscriptions WHERE name = 'live'")
        .execute(&mut *detach)
        .await
        .expect("delete")
        .rows_affected();
    assert_eq!(deleted, 1);
    let committing = tokio::spawn({
        let store = store.clone();
        let message = ping(&topic, 1, None);
        async move {
            let mut tx = store.begin().await?;
            tx.append_outbox(vec![message]).await?;
            tx.commit().await
        }
    });
    // Wait, bounded, until the commit's append is blocked on the delete's row lock.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND query LIKE '%seedwork_topic_log%'",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        if waiting == 1 {
            break;
        }
        assert!(
            !committing.is_finished() && tokio::time::Instant::now() < deadline,
            "the append should wait for the delete's row lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    detach.commit().await.expect("commit");
    committing
        .await
        .expect("the committing task")
        .expect("a commit racing the delete succeeds");

    let delivery = expect_delivery(&mut *kept).await;
    assert_eq!(n_of(&delivery), 1, "the durable subscription still gets it");
    kept.ack(&delivery).await.expect("ack");
    drop(live);
}
