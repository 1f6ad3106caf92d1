//! The outbox relay's concurrency: keys overlap, each key keeps its order, a failing key
//! holds only its own entries.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use seedwork::application::Bus;
use seedwork::memory::MemoryStore;
use seedwork::messaging::{
    IntegrationEvent, IntegrationMessage, Message, MessageKind, OutboxRelay, OutboxStore,
    Publisher, RelayRound,
};
use seedwork::{Error, Result};

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
/// keys it is told to.
#[derive(Default)]
struct Recorder {
    log: Mutex<Vec<(String, u32)>>,
    in_flight: Mutex<(usize, usize)>,
    refuse: Option<String>,
}

#[async_trait]
impl Publisher for Recorder {
    async fn publish(&self, message: &Message) -> Result<()> {
        let step: Step = serde_json::from_value(message.envelope.data.clone()).unwrap();
        if self.refuse.as_deref() == Some(step.key.as_str()) {
            return Err(Error::broker("refused"));
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
            released: 0
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
            released: 2
        }
    );
    assert_eq!(order_of(&recorder.log.lock().unwrap(), "good"), vec![1, 3]);
    assert_eq!(
        store.pending().await.unwrap(),
        2,
        "the bad key's entries wait"
    );
}
