//! The outbox relay's concurrency: keys overlap, each key keeps its order, a failing key
//! holds only its own entries, a message the broker refuses for good is parked, and a slow
//! publish keeps its lease.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use seedwork::application::Bus;
use seedwork::memory::MemoryStore;
use seedwork::messaging::{
    IntegrationEvent, IntegrationMessage, Message, MessageKind, OutboxEntry, OutboxLag,
    OutboxRelay, OutboxStore, ParkedEntry, PublishFailure, Publisher, RelayRound,
};
use seedwork::{Error, Result};
use tokio::sync::{Notify, Semaphore};

#[derive(serde::Serialize, serde::Deserialize)]
struct Step {
    key: String,
    n: u32,
}
impl IntegrationMessage for Step {
    const TOPIC: &'static str = "steps";
    const TYPE: &'static str = "Step";
    const VERSION: &'static str = "v1";
    const KIND: MessageKind = MessageKind::Event;
    fn key(&self) -> Option<String> {
        Some(self.key.clone())
    }
}
impl IntegrationEvent for Step {}

/// Records publishes; holds each one for a moment so concurrent ones overlap; refuses the
/// keys (or the single steps) it is told to, as a broker refuses a message for good.
#[derive(Default)]
struct Recorder {
    log: Mutex<Vec<(String, u32)>>,
    in_flight: Mutex<(usize, usize)>,
    refuse: Option<String>,
    refuse_step: Option<(String, u32)>,
    refusals: AtomicU64,
}

#[async_trait]
impl Publisher for Recorder {
    async fn publish(&self, message: &Message) -> Result<()> {
        let step: Step = serde_json::from_value(message.envelope.data.clone()).unwrap();
        let refused_step = self
            .refuse_step
            .as_ref()
            .is_some_and(|(key, n)| *key == step.key && *n == step.n);
        if self.refuse.as_deref() == Some(step.key.as_str()) || refused_step {
            self.refusals.fetch_add(1, Ordering::SeqCst);
            return Err(Error::broker("refused: does not fit the topic's schema"));
        }
        {
            let mut counts = self.in_flight.lock().unwrap();
            counts.0 += 1;
            counts.1 = counts.1.max(counts.0);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.in_flight.lock().unwrap().0 -= 1;
        self.log.lock().unwrap().push((step.key, step.n));
        Ok(())
    }
}

async fn outbox_with(steps: &[(&str, u32)]) -> MemoryStore {
    let store = MemoryStore::new();
    commit_steps(&store, steps).await;
    store
}

fn order_of(log: &[(String, u32)], key: &str) -> Vec<u32> {
    log.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, n)| *n)
        .collect()
}

#[tokio::test]
async fn keys_overlap_but_each_keeps_its_order() {
    let steps: Vec<(&str, u32)> = (0..12)
        .map(|n| (["a", "b", "c", "d"][n as usize % 4], n))
        .collect();
    let store = outbox_with(&steps).await;
    let recorder = Arc::new(Recorder::default());
    let relay = OutboxRelay::new(Arc::new(store.clone()), recorder.clone()).max_in_flight(4);
    let round = relay.run_once().await.unwrap();
    assert_eq!(
        round,
        RelayRound {
            published: 12,
            ..RelayRound::default()
        }
    );
    let log = recorder.log.lock().unwrap().clone();
    assert_eq!(order_of(&log, "a"), vec![0, 4, 8]);
    assert_eq!(order_of(&log, "d"), vec![3, 7, 11]);
    assert!(
        recorder.in_flight.lock().unwrap().1 > 1,
        "different keys are published concurrently"
    );
    assert_eq!(store.pending().await.unwrap(), 0);
}

#[tokio::test]
async fn one_in_flight_publishes_one_message_at_a_time() {
    let store = outbox_with(&[("a", 0), ("b", 1), ("a", 2), ("c", 3)]).await;
    let recorder = Arc::new(Recorder::default());
    let relay = OutboxRelay::new(Arc::new(store), recorder.clone()).max_in_flight(1);
    relay.run_once().await.unwrap();
    let log = recorder.log.lock().unwrap().clone();
    assert_eq!(log.len(), 4);
    assert_eq!(order_of(&log, "a"), vec![0, 2]);
    assert_eq!(recorder.in_flight.lock().unwrap().1, 1);
}

#[tokio::test]
async fn a_failing_key_keeps_its_entries_and_others_go_out() {
    let store = outbox_with(&[("bad", 0), ("good", 1), ("bad", 2), ("good", 3)]).await;
    let recorder = Arc::new(Recorder {
        refuse: Some("bad".into()),
        ..Recorder::default()
    });
    let relay = OutboxRelay::new(Arc::new(store.clone()), recorder.clone());
    let round = relay.run_once().await.unwrap();
    assert_eq!(
        round,
        RelayRound {
            published: 2,
            released: 1,
            failed: 1,
            parked: 0,
        },
        "the refused entry's failure is counted; the one behind it is only given back"
    );
    assert_eq!(order_of(&recorder.log.lock().unwrap(), "good"), vec![1, 3]);
    assert_eq!(
        store.pending().await.unwrap(),
        2,
        "the bad key's entries wait"
    );
}

/// Waits for `condition` for at most `limit`, checking every few milliseconds.
async fn eventually<F, Fut>(limit: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_relay_parks_a_refused_message_and_keeps_the_other_keys_flowing() {
    let store = outbox_with(&[
        ("bad", 0),
        ("good", 1),
        ("bad", 2),
        ("other", 3),
        ("good", 4),
    ])
    .await;
    let recorder = Arc::new(Recorder {
        refuse_step: Some(("bad".into(), 0)),
        ..Recorder::default()
    });
    let relay = OutboxRelay::new(Arc::new(store.clone()), recorder.clone())
        .max_attempts(3)
        .poll_interval(Duration::from_millis(5));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));

    let settled = eventually(Duration::from_secs(10), || {
        let store = store.clone();
        async move { store.lag().await.unwrap().parked == 1 }
    })
    .await;
    assert!(settled, "the refused message is parked");
    assert!(
        eventually(Duration::from_secs(10), || {
            let recorder = recorder.clone();
            async move { recorder.log.lock().unwrap().len() == 3 }
        })
        .await,
        "the other keys went out"
    );
    let _ = stop.send(());
    running.await.unwrap();

    let log = recorder.log.lock().unwrap().clone();
    assert_eq!(order_of(&log, "good"), vec![1, 4]);
    assert_eq!(order_of(&log, "other"), vec![3]);
    assert!(
        order_of(&log, "bad").is_empty(),
        "the entry behind the parked one waits"
    );
    assert_eq!(
        recorder.refusals.load(Ordering::SeqCst),
        3,
        "tried exactly max_attempts times, then never again"
    );
    let lag = store.lag().await.unwrap();
    assert_eq!((lag.pending, lag.parked), (1, 1));
    let parked = store.parked(None, 10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].attempts, 3);
    assert!(parked[0].last_error.contains("schema"), "{:?}", parked[0]);
    assert!(store
        .outbox_snapshot()
        .iter()
        .any(|entry| entry.parked && entry.sequence == parked[0].sequence));
}

/// Holds every publish until the test lets it go.
struct Slow {
    started: Notify,
    gate: Semaphore,
    sent: AtomicU64,
}

impl Default for Slow {
    fn default() -> Self {
        Slow {
            started: Notify::new(),
            gate: Semaphore::new(0),
            sent: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl Publisher for Slow {
    async fn publish(&self, _message: &Message) -> Result<()> {
        self.started.notify_one();
        let _permit = self.gate.acquire().await.map_err(Error::broker)?;
        self.sent.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A memory store that counts lease renewals.
struct CountingRenewals {
    inner: MemoryStore,
    renewals: AtomicU64,
}

#[async_trait]
impl OutboxStore for CountingRenewals {
    async fn claim(
        &self,
        claimant: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>> {
        self.inner.claim(claimant, limit, lease).await
    }
    async fn mark_published(&self, claimant: &str, sequences: &[u64]) -> Result<()> {
        self.inner.mark_published(claimant, sequences).await
    }
    async fn release(&self, claimant: &str, sequences: &[u64]) -> Result<()> {
        self.inner.release(claimant, sequences).await
    }
    async fn renew(&self, claimant: &str, sequences: &[u64], lease: Duration) -> Result<u64> {
        self.renewals.fetch_add(1, Ordering::SeqCst);
        self.inner.renew(claimant, sequences, lease).await
    }
    async fn record_failures(
        &self,
        claimant: &str,
        failures: &[PublishFailure],
        max_attempts: u32,
    ) -> Result<Vec<u64>> {
        self.inner
            .record_failures(claimant, failures, max_attempts)
            .await
    }
    async fn parked(&self, after: Option<u64>, limit: usize) -> Result<Vec<ParkedEntry>> {
        self.inner.parked(after, limit).await
    }
    async fn redrive(&self, sequence: u64) -> Result<()> {
        self.inner.redrive(sequence).await
    }
    async fn discard(&self, sequence: u64) -> Result<()> {
        self.inner.discard(sequence).await
    }
    async fn purge_published(&self, older_than: Duration) -> Result<u64> {
        self.inner.purge_published(older_than).await
    }
    async fn pending(&self) -> Result<u64> {
        self.inner.pending().await
    }
    async fn lag(&self) -> Result<OutboxLag> {
        self.inner.lag().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_slower_than_the_lease_keeps_its_entries_from_other_relays() {
    let store = outbox_with(&[("a", 0), ("a", 1), ("b", 2)]).await;
    let counting = Arc::new(CountingRenewals {
        inner: store.clone(),
        renewals: AtomicU64::new(0),
    });
    let slow = Arc::new(Slow::default());
    let lease = Duration::from_millis(150);
    let slow_relay = OutboxRelay::new(counting.clone(), slow.clone()).lease(lease);
    let started = slow.started.notified();
    let first = tokio::spawn(async move { slow_relay.run_once().await });
    tokio::time::timeout(Duration::from_secs(5), started)
        .await
        .expect("the slow publish starts");

    // The first renewal comes a third of a lease after the claim: four of them mean the
    // original lease has run out.
    assert!(
        eventually(Duration::from_secs(10), || {
            let counting = counting.clone();
            async move { counting.renewals.load(Ordering::SeqCst) >= 4 }
        })
        .await,
        "the relay renews its lease while the publish is outstanding"
    );
    let other = Arc::new(Recorder::default());
    let other_relay = OutboxRelay::new(Arc::new(store.clone()), other.clone()).lease(lease);
    assert_eq!(
        other_relay.run_once().await.unwrap(),
        RelayRound::default(),
        "another relay claims nothing while the slow one renews"
    );

    slow.gate.add_permits(3);
    let round = first.await.unwrap().unwrap();
    assert_eq!(round.published, 3);
    assert_eq!(slow.sent.load(Ordering::SeqCst), 3);
    assert!(
        other.log.lock().unwrap().is_empty(),
        "nothing published twice"
    );
    assert_eq!(store.pending().await.unwrap(), 0);
    let renewals = counting.renewals.load(Ordering::SeqCst);
    assert_eq!(other_relay.run_once().await.unwrap(), RelayRound::default());
    assert_eq!(
        counting.renewals.load(Ordering::SeqCst),
        renewals,
        "no renewal once the round is over"
    );
}

/// Holds the publishes of key `held` until released; records every publish when it completes.
struct HoldsOneKey {
    held: String,
    started: Notify,
    gate: Semaphore,
    log: Mutex<Vec<(String, u32)>>,
}

#[async_trait]
impl Publisher for HoldsOneKey {
    async fn publish(&self, message: &Message) -> Result<()> {
        let step: Step = serde_json::from_value(message.envelope.data.clone()).unwrap();
        if step.key == self.held {
            self.started.notify_one();
            let _permit = self.gate.acquire().await.map_err(Error::broker)?;
        }
        self.log.lock().unwrap().push((step.key, step.n));
        Ok(())
    }
}

/// Commits `steps` to `store`'s outbox in one unit of work.
async fn commit_steps(store: &MemoryStore, steps: &[(&str, u32)]) {
    let bus = Bus::builder()
        .store(Arc::new(store.clone()))
        .build()
        .unwrap();
    let mut uow = bus.unit_of_work().await.unwrap();
    for (key, n) in steps {
        uow.enqueue(&Step {
            key: key.to_string(),
            n: *n,
        })
        .unwrap();
    }
    uow.commit().await.unwrap();
}

/// A round stuck on a slow publish (key `slow`) while two more entries are committed: one of
/// another key, one of the stuck key. With `max_rounds` rounds, returns what was published by
/// the time the other key's entry went out, or, with one round, 300 ms after the commit (when
/// nothing can have gone out: the one round is stuck). Then lets the publish go and waits for
/// all four entries; returns the final log too.
async fn overlap_with(max_rounds: usize) -> (Vec<(String, u32)>, Vec<(String, u32)>) {
    let store = MemoryStore::new();
    commit_steps(&store, &[("slow", 1)]).await;
    let publisher = Arc::new(HoldsOneKey {
        held: "slow".into(),
        started: Notify::new(),
        gate: Semaphore::new(0),
        log: Mutex::new(Vec::new()),
    });
    let relay = OutboxRelay::new(Arc::new(store.clone()), publisher.clone())
        .max_rounds(max_rounds)
        .poll_interval(Duration::from_secs(3600));
    let started = publisher.started.notified();
    let stop = Arc::new(Notify::new());
    let running = tokio::spawn({
        let stop = stop.clone();
        async move { relay.run(async move { stop.notified().await }).await }
    });
    tokio::time::timeout(Duration::from_secs(5), started)
        .await
        .expect("the slow publish starts");
    commit_steps(&store, &[("slow", 2), ("fast", 1)]).await;
    let fast_out = || {
        let publisher = publisher.clone();
        async move { order_of(&publisher.log.lock().unwrap(), "fast") == vec![1] }
    };
    let wait = if max_rounds > 1 {
        Duration::from_secs(5)
    } else {
        Duration::from_millis(300)
    };
    eventually(wait, fast_out).await;
    let meanwhile = publisher.log.lock().unwrap().clone();
    publisher.gate.add_permits(2);
    let all_out = || {
        let publisher = publisher.clone();
        async move { publisher.log.lock().unwrap().len() == 3 }
    };
    assert!(
        eventually(Duration::from_secs(5), all_out).await,
        "everything goes out once the slow publish is let go: {:?}",
        publisher.log.lock().unwrap()
    );
    assert!(
        eventually(Duration::from_secs(5), || {
            let store = store.clone();
            async move { store.pending().await.unwrap() == 0 }
        })
        .await,
        "every entry is marked"
    );
    stop.notify_one();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the relay stops")
        .unwrap();
    let log = publisher.log.lock().unwrap().clone();
    (meanwhile, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_during_a_slow_round_goes_out_in_a_round_of_its_own() {
    let (meanwhile, log) = overlap_with(2).await;
    assert_eq!(
        meanwhile,
        vec![("fast".to_string(), 1)],
        "the other key's entry went out while the slow publish was held; the stuck key's \
         second entry waited behind its first"
    );
    assert_eq!(
        order_of(&log, "slow"),
        vec![1, 2],
        "the stuck key keeps its order"
    );
    assert_eq!(log.len(), 3, "each entry published once: {log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_round_at_a_time_a_commit_waits_for_the_round() {
    let (meanwhile, log) = overlap_with(1).await;
    assert!(
        meanwhile.is_empty(),
        "nothing goes out while the one round is held: {meanwhile:?}"
    );
    assert_eq!(order_of(&log, "slow"), vec![1, 2]);
    assert_eq!(log.len(), 3, "each entry published once: {log:?}");
}
