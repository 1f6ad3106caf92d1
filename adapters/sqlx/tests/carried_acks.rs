//! Acknowledgements carried by the store's transaction (`Consumer::transactional_ack`,
//! `Transaction::acknowledge`): a consumer of the store's `direct_transport` hands its
//! acknowledgement to a unit of work, which deletes the subscription's rows in its own
//! transaction. They are gone exactly when that transaction commits, with no write of the
//! consumer's own; a rollback leaves the deliveries in the consumer's hand to settle as usual;
//! a transaction that is not on the transport's database declines them.

use seedwork::memory::MemoryStore;
use seedwork::messaging::{Consumer, Subscriber, SubscriptionKind, SubscriptionOptions};
use seedwork::testing::contract::broker::{
    expect_delivery, expect_quiet, n_of, ping, unique_topic,
};
use seedwork::uow::TransactionalStore;
use seedwork_sqlx::{PostgresStore, PostgresTransport, SqliteStore, SqliteTransport};

mod support;

/// The database under the store, to count what a subscription still holds.
enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Db {
    /// Rows of `topic`'s subscriptions not yet acknowledged (what the transport would still
    /// deliver), as committed.
    async fn waiting(&self, topic: &str) -> i64 {
        const SQLITE: &str = "SELECT COUNT(*) FROM seedwork_subscription_messages m \
             JOIN seedwork_subscriptions s ON s.id = m.subscription_id WHERE s.topic = ?";
        const POSTGRES: &str = "SELECT COUNT(*) FROM seedwork_subscription_messages m \
             JOIN seedwork_subscriptions s ON s.id = m.subscription_id WHERE s.topic = $1";
        match self {
            Db::Sqlite(pool) => sqlx::query_scalar(SQLITE)
                .bind(topic)
                .fetch_one(pool)
                .await
                .expect("count"),
            Db::Postgres(pool) => sqlx::query_scalar(POSTGRES)
                .bind(topic)
                .fetch_one(pool)
                .await
                .expect("count"),
        }
    }
}

/// Commits `messages` through `store`'s outbox (straight into its direct transport).
async fn publish(store: &dyn TransactionalStore, messages: Vec<seedwork::messaging::Message>) {
    let mut tx = store.begin().await.expect("begin");
    tx.append_outbox(messages).await.expect("append");
    tx.commit().await.expect("commit");
}

async fn subscribe(transport: &dyn Subscriber, topic: &str) -> Box<dyn Consumer> {
    transport
        .subscribe(SubscriptionOptions::new(topic, "carried").kind(SubscriptionKind::Shared))
        .await
        .expect("subscribe")
}

async fn a_carried_ack_settles_with_the_commit(
    store: &dyn TransactionalStore,
    transport: &dyn Subscriber,
    db: &Db,
) {
    let topic = unique_topic("carried");
    let mut consumer = subscribe(transport, &topic).await;
    publish(store, vec![ping(&topic, 1, None), ping(&topic, 2, None)]).await;
    let first = expect_delivery(&mut *consumer).await;
    let second = expect_delivery(&mut *consumer).await;
    let ack = consumer
        .transactional_ack(&[&first, &second])
        .expect("a consumer of the direct transport offers its acknowledgement");
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.acknowledge(&ack).await.expect("acknowledge"), "carried");
    assert_eq!(
        db.waiting(&topic).await,
        2,
        "nothing settled before the commit"
    );
    tx.commit().await.expect("commit");
    assert_eq!(db.waiting(&topic).await, 0, "settled by the commit itself");
    consumer.ack_committed(&first).await.expect("let go");
    consumer.ack_committed(&second).await.expect("let go");
    assert!(
        consumer.ack_committed(&first).await.is_err(),
        "a delivery is let go of once"
    );
    expect_quiet(&mut *consumer).await;
    drop(consumer);
    let mut again = subscribe(transport, &topic).await;
    expect_quiet(&mut *again).await;
}

async fn a_rolled_back_ack_leaves_the_delivery_in_hand(
    store: &dyn TransactionalStore,
    transport: &dyn Subscriber,
    db: &Db,
) {
    let topic = unique_topic("carried-rollback");
    let mut consumer = subscribe(transport, &topic).await;
    publish(store, vec![ping(&topic, 3, Some("k"))]).await;
    let delivery = expect_delivery(&mut *consumer).await;
    let ack = consumer.transactional_ack(&[&delivery]).expect("offered");
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.acknowledge(&ack).await.expect("acknowledge"));
    tx.rollback().await.expect("rollback");
    assert_eq!(
        db.waiting(&topic).await,
        1,
        "the rollback took the ack with it"
    );
    // Still this consumer's to settle: a nack brings it back.
    consumer.nack(&delivery).await.expect("nack");
    let again = expect_delivery(&mut *consumer).await;
    assert_eq!((n_of(&again), again.attempt), (3, 2));
    consumer.ack(&again).await.expect("ack");
}

async fn other_transactions_decline(
    store: &dyn TransactionalStore,
    transport: &dyn Subscriber,
    elsewhere: &dyn TransactionalStore,
    db: &Db,
) {
    let topic = unique_topic("carried-elsewhere");
    let mut consumer = subscribe(transport, &topic).await;
    publish(store, vec![ping(&topic, 4, None)]).await;
    let delivery = expect_delivery(&mut *consumer).await;
    let ack = consumer.transactional_ack(&[&delivery]).expect("offered");
    for other in [elsewhere, &MemoryStore::new() as &dyn TransactionalStore] {
        let mut tx = other.begin().await.expect("begin");
        assert!(
            !tx.acknowledge(&ack).await.expect("acknowledge"),
            "declined"
        );
        tx.commit().await.expect("commit");
    }
    assert_eq!(db.waiting(&topic).await, 1);
    consumer.ack(&delivery).await.expect("ack");
    assert!(
        consumer.transactional_ack(&[&delivery]).is_none(),
        "no acknowledgement for a delivery no longer in hand"
    );
}

/// A fresh SQLite store, its direct transport and its database.
async fn sqlite() -> (tempfile::TempDir, SqliteStore, SqliteTransport, Db) {
    let (store, dir) = support::sqlite::fresh_store().await;
    let transport = store.direct_transport(Default::default());
    let db = Db::Sqlite(store.pool().clone());
    (dir, store, transport, db)
}

#[tokio::test]
async fn sqlite_a_carried_ack_settles_with_the_commit() {
    let (_dir, store, transport, db) = sqlite().await;
    a_carried_ack_settles_with_the_commit(&store, &transport, &db).await;
}

#[tokio::test]
async fn sqlite_a_rolled_back_ack_leaves_the_delivery_in_hand() {
    let (_dir, store, transport, db) = sqlite().await;
    a_rolled_back_ack_leaves_the_delivery_in_hand(&store, &transport, &db).await;
}

#[tokio::test]
async fn sqlite_other_transactions_decline() {
    let (_dir, store, transport, db) = sqlite().await;
    let (_other_dir, other, _, _) = sqlite().await;
    other_transactions_decline(&store, &transport, &other, &db).await;
}

/// A transport built on the store's pool but not as its direct transport: the store's
/// transactions cannot tell it is the same database, so they decline.
#[tokio::test]
async fn sqlite_a_transport_that_is_not_the_store_s_own_is_declined() {
    let (_dir, store, _, db) = sqlite().await;
    let separate = SqliteTransport::new(store.pool().clone());
    other_transactions_decline(&store, &separate, &store, &db).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn postgres_carried_acks() {
    let store: PostgresStore = support::postgres::fresh_store().await;
    let transport = store.direct_transport(Default::default());
    let db = Db::Postgres(store.pool().clone());
    a_carried_ack_settles_with_the_commit(&store, &transport, &db).await;
    a_rolled_back_ack_leaves_the_delivery_in_hand(&store, &transport, &db).await;
    let other: PostgresStore = support::postgres::fresh_store().await;
    let _ = other.direct_transport(Default::default());
    other_transactions_decline(&store, &transport, &other, &db).await;
    let separate = PostgresTransport::new(store.pool().clone());
    other_transactions_decline(&store, &separate, &store, &db).await;
}
