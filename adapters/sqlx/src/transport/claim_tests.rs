//! When a consumer claims, and who wakes it. A claim is a write transaction even when it finds
//! nothing, so with nothing to settle a consumer first looks with a read (`Backend::peek`),
//! unless it has reason to expect work — it is new, its last claim took all it could, or a
//! publish to its topic or a release in its subscription happened in this process since that
//! claim began. A keyed message let go of wakes the consumers of its own
//! subscription (a later message of the key may be waiting), and no one else. Counted on a
//! backend that wraps SQLite's and counts claims and peeks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use seedwork::messaging::{Consumer, Delivery, Message, SubscriptionOptions};
use seedwork::testing::contract::broker::{n_of, ping};
use tokio::task::JoinHandle;

use super::backend::SqlBackend;
use super::{
    Backend, Claimed, ConsumerRef, EncodedMessage, Outcome, Transport, TransportSettings, Wakers,
};
use crate::sqlite::Sqlite;

#[derive(Default)]
struct Counts {
    claims: AtomicUsize,
    peeks: AtomicUsize,
}

impl Counts {
    fn get(&self) -> (usize, usize) {
        (
            self.claims.load(Ordering::SeqCst),
            self.peeks.load(Ordering::SeqCst),
        )
    }
}

/// SQLite's backend, counting claims and peeks.
struct Counting {
    inner: SqlBackend<Sqlite>,
    counts: Arc<Counts>,
}

#[async_trait]
impl Backend for Counting {
    async fn check(&self) -> Outcome<()> {
        self.inner.check().await
    }
    async fn append(&self, messages: &[EncodedMessage], now: i64) -> Outcome<()> {
        self.inner.append(messages, now).await
    }
    async fn attach(
        &self,
        options: &SubscriptionOptions,
        now: i64,
        lease_until: i64,
    ) -> Outcome<(i64, i64)> {
        self.inner.attach(options, now, lease_until).await
    }
    async fn claim(
        &self,
        consumer: &ConsumerRef,
        acks: &[(i64, i64)],
        now: i64,
        scan_limit: i64,
        max: usize,
    ) -> Outcome<std::result::Result<Vec<Claimed>, Option<i64>>> {
        let found = self.inner.claim(consumer, acks, now, scan_limit, max).await;
        // Counted once done, as peeks are.
        self.counts.claims.fetch_add(1, Ordering::SeqCst);
        found
    }
    async fn peek(
        &self,
        consumer: &ConsumerRef,
        now: i64,
        scan_limit: i64,
    ) -> Outcome<std::result::Result<(), Option<i64>>> {
        let found = self.inner.peek(consumer, now, scan_limit).await;
        // Counted once it has looked: a consumer that found nothing is then waiting.
        self.counts.peeks.fetch_add(1, Ordering::SeqCst);
        found
    }
    async fn retry_later(
        &self,
        consumer: &ConsumerRef,
        sequence: i64,
        attempt: i64,
        visible_after: i64,
    ) -> Outcome<bool> {
        self.inner
            .retry_later(consumer, sequence, attempt, visible_after)
            .await
    }
    async fn dead_letter(
        &self,
        consumer: &ConsumerRef,
        sequence: i64,
        attempt: i64,
        dead: &EncodedMessage,
        now: i64,
    ) -> Outcome<bool> {
        self.inner
            .dead_letter(consumer, sequence, attempt, dead, now)
            .await
    }
    async fn heartbeat(&self, consumer: &ConsumerRef, now: i64, lease_until: i64) -> Outcome<bool> {
        self.inner.heartbeat(consumer, now, lease_until).await
    }
    async fn detach(&self, consumer: &ConsumerRef, acks: &[(i64, i64)]) -> Outcome<()> {
        self.inner.detach(consumer, acks).await
    }
    async fn purge(&self, cutoff: i64) -> Outcome<u64> {
        self.inner.purge(cutoff).await
    }
    async fn unsubscribe(&self, topic: &str, name: &str, now: i64) -> Outcome<()> {
        self.inner.unsubscribe(topic, name, now).await
    }
    fn listen(&self, wakers: Arc<Wakers>) -> Option<JoinHandle<()>> {
        self.inner.listen(wakers)
    }
}

/// Settles `delivery` of `subscription` as a transaction carrying its acknowledgement would:
/// its row is deleted, then the consumer lets go of it.
async fn settle(pool: &sqlx::SqlitePool, consumer: &mut dyn Consumer, delivery: &Delivery) {
    sqlx::query(
        "DELETE FROM seedwork_subscription_messages WHERE sequence = ? AND subscription_id = \
         (SELECT id FROM seedwork_subscriptions WHERE topic = 't' AND name = ?)",
    )
    .bind(i64::try_from(delivery.token).expect("a sequence"))
    .bind(&consumer.options().subscription)
    .execute(pool)
    .await
    .expect("delete the row");
    consumer.ack_committed(delivery).await.expect("let go");
}

/// Receives the next delivery and settles it; its number.
async fn take(pool: &sqlx::SqlitePool, consumer: &mut dyn Consumer) -> u32 {
    let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.receive())
        .await
        .expect("a delivery within 10 s")
        .expect("receive");
    settle(pool, consumer, &delivery).await;
    n_of(&delivery)
}

/// Receives for `wait`, expecting nothing.
async fn nothing_for(consumer: &mut dyn Consumer, wait: Duration) {
    if let Ok(received) = tokio::time::timeout(wait, consumer.receive()).await {
        panic!("expected nothing, got {received:?}");
    }
}

/// A transport on a fresh SQLite file whose backend counts into `counts`, with a poll too
/// slow to happen within a test: every claim or peek is caused by the step before it.
async fn counted(counts: &Arc<Counts>) -> (tempfile::TempDir, sqlx::SqlitePool, Transport) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("claims.db");
    let store = crate::SqliteStore::open(path.to_str().expect("utf-8"))
        .await
        .expect("open");
    let backend = Counting {
        inner: SqlBackend::<Sqlite>::new(store.pool().clone()),
        counts: Arc::clone(counts),
    };
    let settings = TransportSettings {
        poll_interval: Duration::from_secs(600),
        prefetch: 2,
        ..TransportSettings::default()
    };
    let pool = store.pool().clone();
    (dir, pool, Transport::new(Box::new(backend), settings))
}

async fn publish(transport: &Transport, n: u32, key: Option<&str>) {
    let message: Message = ping("t", n, key);
    transport.publish(&message).await.expect("publish");
}

/// Waits (bounded) until `counts` shows at least `claims` claims and `peeks` peeks, each
/// counted once done: a consumer whose last one found nothing is then waiting for a signal.
async fn until(counts: &Counts, claims: usize, peeks: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (done_claims, done_peeks) = counts.get();
        if done_claims >= claims && done_peeks >= peeks {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not {claims} claims and {peeks} peeks within 10 s: {:?}",
            counts.get()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn a_consumer_looks_before_it_claims_unless_it_expects_work() {
    let counts = Arc::new(Counts::default());
    let (_dir, pool, transport) = counted(&counts).await;
    let mut consumer = transport
        .subscribe(SubscriptionOptions::new("t", "s"))
        .await
        .expect("subscribe");
    let publish = |n: u32| publish(&transport, n, None);

    publish(1).await;
    assert_eq!(take(&pool, &mut consumer).await, 1);
    assert_eq!(counts.get(), (1, 0), "a new consumer claims at once");

    nothing_for(&mut consumer, Duration::from_millis(300)).await;
    assert_eq!(
        counts.get(),
        (1, 1),
        "nothing to settle and a claim short of its limit: it looks, finds nothing, waits"
    );

    // Published while the consumer waits, once it has looked and found nothing.
    let published_while_waiting = async {
        until(&counts, 1, 2).await;
        publish(2).await;
    };
    let (taken, ()) = tokio::join!(take(&pool, &mut consumer), published_while_waiting);
    assert_eq!(taken, 2);
    assert_eq!(
        counts.get(),
        (2, 2),
        "looked and found nothing, then woken by the publish: straight to a claim"
    );

    // Published in this process while the consumer was busy: no wake-up reached it, but the
    // signal was given since its last claim began.
    publish(3).await;
    assert_eq!(take(&pool, &mut consumer).await, 3);
    assert_eq!(
        counts.get(),
        (3, 2),
        "published since its last claim: straight to a claim"
    );

    // Published by another process (here another transport on the same file): no signal in
    // this one, so the consumer looks first, finds work, and claims.
    let elsewhere = Transport::on_pool::<Sqlite>(pool.clone(), TransportSettings::default());
    for n in [4, 5, 6] {
        elsewhere
            .publish(&ping("t", n, None))
            .await
            .expect("publish");
    }
    assert_eq!(take(&pool, &mut consumer).await, 4);
    assert_eq!(counts.get(), (4, 3), "it looked, found work, and claimed");
    assert_eq!(take(&pool, &mut consumer).await, 5);
    assert_eq!(counts.get(), (4, 3), "the second came with the first claim");

    // That claim took all it could (2): the next goes straight to the writer.
    assert_eq!(take(&pool, &mut consumer).await, 6);
    assert_eq!(
        counts.get(),
        (5, 3),
        "after a full claim: straight to a claim"
    );
    nothing_for(&mut consumer, Duration::from_millis(300)).await;
    assert_eq!(
        counts.get(),
        (5, 4),
        "a claim short of its limit and nothing since: it looks, finds nothing, waits"
    );
}

#[tokio::test]
async fn a_keyed_message_let_go_of_wakes_its_subscription_only() {
    let counts = Arc::new(Counts::default());
    let (_dir, pool, transport) = counted(&counts).await;
    let subscribe = |name: &str| transport.subscribe(SubscriptionOptions::new("t", name));
    let mut first = subscribe("s").await.expect("subscribe");
    let mut second = subscribe("s").await.expect("subscribe");
    let mut elsewhere = subscribe("other").await.expect("subscribe");
    publish(&transport, 1, Some("k")).await;
    publish(&transport, 2, Some("k")).await;
    // Each subscription has both; `first` takes k's first, so k's second waits behind it.
    let held = tokio::time::timeout(Duration::from_secs(10), first.receive())
        .await
        .expect("in time")
        .expect("receive");
    assert_eq!(n_of(&held), 1);
    assert_eq!(take(&pool, &mut elsewhere).await, 1);
    let (claims, peeks) = counts.get();
    assert_eq!(take(&pool, &mut elsewhere).await, 2);
    assert_eq!(
        counts.get(),
        (claims + 1, peeks + 1),
        "its own release is no reason to expect work: it looked, then claimed k's second"
    );
    let (claims, peeks) = counts.get();

    // `second` (new: it claims at once) and `elsewhere` (its last claim took less than it
    // may, and its own release frees nothing for it: it looks) find nothing they may take,
    // and wait.
    let waiting = async {
        until(&counts, claims + 1, peeks + 1).await;
        let before = counts.get();
        settle(&pool, &mut first, &held).await;
        before
    };
    let (taken, nothing, before) = tokio::join!(
        take(&pool, &mut second),
        nothing_for(&mut elsewhere, Duration::from_millis(500)),
        waiting
    );
    let ((), after) = (nothing, counts.get());
    assert_eq!(taken, 2, "k's second, as soon as its first was let go of");
    assert_eq!(before, (claims + 1, peeks + 1));
    assert_eq!(
        after,
        (claims + 2, peeks + 1),
        "the release woke `second` (one claim) and not `elsewhere` (no claim, no look)"
    );
}
