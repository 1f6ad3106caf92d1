//! When a consumer looks before it claims: a claim is a write transaction even when it finds
//! nothing, so with nothing to settle a consumer first looks with a read (`Backend::peek`),
//! unless it has reason to expect work — it is new, a publish woke it, or its last claim took
//! all it could. Counted on a backend that wraps SQLite's and counts both calls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use seedwork::messaging::{Consumer, Message, SubscriptionOptions};
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
        self.counts.claims.fetch_add(1, Ordering::SeqCst);
        self.inner.claim(consumer, acks, now, scan_limit, max).await
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
    fn listen(&self, wakers: Arc<Wakers>) -> Option<JoinHandle<()>> {
        self.inner.listen(wakers)
    }
}

/// Receives the next delivery and lets go of it as a committed transaction's carried
/// acknowledgement would (so nothing is left to settle in the next claim); its number.
async fn take(consumer: &mut dyn Consumer) -> u32 {
    let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.receive())
        .await
        .expect("a delivery within 10 s")
        .expect("receive");
    consumer.ack_committed(&delivery).await.expect("let go");
    n_of(&delivery)
}

/// Receives for `wait`, expecting nothing.
async fn nothing_for(consumer: &mut dyn Consumer, wait: Duration) {
    if let Ok(received) = tokio::time::timeout(wait, consumer.receive()).await {
        panic!("expected nothing, got {received:?}");
    }
}

#[tokio::test]
async fn a_consumer_looks_before_it_claims_unless_it_expects_work() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("peek.db");
    let store = crate::SqliteStore::open(path.to_str().expect("utf-8"))
        .await
        .expect("open");
    let counts = Arc::new(Counts::default());
    let backend = Counting {
        inner: SqlBackend::<Sqlite>::new(store.pool().clone()),
        counts: Arc::clone(&counts),
    };
    // No poll within the test: every claim or peek below is caused by the step before it.
    let settings = TransportSettings {
        poll_interval: Duration::from_secs(600),
        prefetch: 2,
        ..TransportSettings::default()
    };
    let transport = Transport::new(Box::new(backend), settings);
    let mut consumer = transport
        .subscribe(SubscriptionOptions::new("t", "s"))
        .await
        .expect("subscribe");
    let publish = |n: u32| {
        let transport = transport.clone();
        async move {
            let message: Message = ping("t", n, None);
            transport.publish(&message).await.expect("publish");
        }
    };

    publish(1).await;
    assert_eq!(take(&mut consumer).await, 1);
    assert_eq!(counts.get(), (1, 0), "a new consumer claims at once");

    nothing_for(&mut consumer, Duration::from_millis(300)).await;
    assert_eq!(
        counts.get(),
        (1, 1),
        "nothing to settle and a claim short of its limit: it looks, finds nothing, waits"
    );

    // Published while the consumer waits, once it has looked and found nothing.
    let published_while_waiting = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while counts.get().1 < 2 {
            assert!(tokio::time::Instant::now() < deadline, "no second look");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        publish(2).await;
    };
    let (taken, ()) = tokio::join!(take(&mut consumer), published_while_waiting);
    assert_eq!(taken, 2);
    assert_eq!(
        counts.get(),
        (2, 2),
        "looked and found nothing, then woken by the publish: straight to a claim"
    );

    // Published while nobody waits (no wake-up reaches the consumer).
    publish(3).await;
    publish(4).await;
    assert_eq!(take(&mut consumer).await, 3);
    assert_eq!(counts.get(), (3, 3), "it looked, found work, claimed both");
    assert_eq!(take(&mut consumer).await, 4);
    assert_eq!(counts.get(), (3, 3), "the second came with the first claim");

    nothing_for(&mut consumer, Duration::from_millis(300)).await;
    assert_eq!(
        counts.get(),
        (4, 3),
        "the last claim took all it could: straight to a claim, which finds nothing"
    );
}
