//! Direct delivery (`SqlStore::direct_transport`): a committed transaction's outbox messages
//! reach the transport's consumers with no relay, in order per key; a rolled-back one's never
//! do; the outbox keeps nothing for a relay; and the commit wakes a waiting consumer at once
//! (the poll interval here is a minute, longer than any wait below).

use std::time::Duration;

use seedwork::messaging::{OutboxStore, Subscriber, SubscriptionKind, SubscriptionOptions};
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
}
