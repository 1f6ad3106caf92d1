//! `Bus::consume_with`: how each kind of failure settles a delivery. An outage is waited out and
//! never counted, a refusal is dead-lettered at once with its reason, any other failure is
//! nacked and counted.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seedwork::application::{ConsumeOptions, OutagePolicy};
use seedwork::memory::{MemoryBroker, MemoryStore};
use seedwork::messaging::{
    dead_letter, Message, Publisher, RetryPolicy, Subscriber, SubscriptionOptions,
};
use seedwork::prelude::*;
use seedwork::supervision::{Health, HealthPart};
use seedwork::testing::contract::store::AccountChanged;
use tokio::sync::oneshot;

/// What the scripted handler does on each call, in order; `Ok` once the script runs out.
#[derive(Clone)]
enum Step {
    Unavailable,
    /// Unavailable until the script's `outage_over` flag is set.
    UnavailableUntilOver,
    Refuse,
    Fail,
}

#[derive(Clone, Default)]
struct Script {
    steps: Arc<Mutex<VecDeque<Step>>>,
    calls: Arc<Mutex<u32>>,
    succeeded: Arc<tokio::sync::Notify>,
    outage_over: Arc<std::sync::atomic::AtomicBool>,
}

impl Script {
    fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        Script {
            steps: Arc::new(Mutex::new(steps.into_iter().collect())),
            ..Script::default()
        }
    }

    fn calls(&self) -> u32 {
        *self.calls.lock().unwrap()
    }
}

#[seedwork::async_trait]
impl MessageHandler<AccountChanged> for Script {
    async fn handle(
        &self,
        _message: Envelope<AccountChanged>,
        _uow: &mut UnitOfWork,
    ) -> Result<()> {
        *self.calls.lock().unwrap() += 1;
        let step = self.steps.lock().unwrap().pop_front();
        match step {
            Some(Step::Unavailable) => Err(Error::unavailable("database restarting")),
            Some(Step::UnavailableUntilOver) => {
                if !self.outage_over.load(std::sync::atomic::Ordering::SeqCst) {
                    self.steps
                        .lock()
                        .unwrap()
                        .push_front(Step::UnavailableUntilOver);
                    return Err(Error::unavailable("database restarting"));
                }
                self.succeeded.notify_one();
                Ok(())
            }
            Some(Step::Refuse) => Err(DomainError::BusinessRule {
                rule: "SaldoPositivo",
                message: "the balance would go negative".into(),
            }
            .into()),
            Some(Step::Fail) => Err(Error::store("a constraint the handler did not expect")),
            None => {
                self.succeeded.notify_one();
                Ok(())
            }
        }
    }
}

const TOPIC: &str = "cuentas";

fn retry(max_deliveries: u32) -> RetryPolicy {
    RetryPolicy {
        max_deliveries,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        multiplier: 2,
    }
}

fn changed() -> Message {
    let mut message = Message::encode(
        &AccountChanged {
            account_id: "a".into(),
            change: "credit".into(),
            amount: 10,
        },
        "tests",
    )
    .unwrap();
    message.topic = TOPIC.into();
    message
}

struct Running {
    broker: MemoryBroker,
    store: MemoryStore,
    options: SubscriptionOptions,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<()>>,
}

/// Starts `Bus::consume_with` on a fresh subscription with `max_deliveries`, then publishes one
/// message.
async fn consume(script: &Script, max_deliveries: u32) -> (Running, Message) {
    consume_reporting(script, max_deliveries, HealthPart::detached("consumer")).await
}

async fn consume_reporting(
    script: &Script,
    max_deliveries: u32,
    part: HealthPart,
) -> (Running, Message) {
    let broker = MemoryBroker::new();
    let store = MemoryStore::new();
    let bus = Bus::builder()
        .store(Arc::new(store.clone()))
        .on_message(script.clone())
        .build()
        .unwrap();
    let options = SubscriptionOptions::new(TOPIC, "s").retry(retry(max_deliveries));
    let consumer = broker.subscribe(options.clone()).await.unwrap();
    let outage = ConsumeOptions::new()
        .outage(OutagePolicy {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
        })
        .report_to(part);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        bus.consume_with(consumer, &outage, async {
            let _ = stopped.await;
        })
        .await
    });
    let message = changed();
    broker.publish(&message).await.unwrap();
    let running = Running {
        broker,
        store,
        options,
        stop,
        task,
    };
    (running, message)
}

impl Running {
    /// Waits (bounded) until the subscription has nothing left, then stops the loop.
    async fn settle(self) -> (MemoryBroker, MemoryStore, SubscriptionOptions) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.broker.backlog(TOPIC, &self.options.subscription) > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the subscription did not drain within 10 s"
            );
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
        (self.broker, self.store, self.options)
    }
}

#[tokio::test]
async fn an_outage_is_waited_out_and_never_counted_against_the_message() {
    // Four outages in a row on a subscription that allows a single delivery: if any of them
    // counted, the message would be dead-lettered.
    let script = Script::new(std::iter::repeat_n(Step::Unavailable, 4));
    let (running, message) = consume(&script, 1).await;
    let succeeded = script.succeeded.clone();
    tokio::time::timeout(Duration::from_secs(10), succeeded.notified())
        .await
        .expect("the handler succeeded after the outage");
    let (broker, store, options) = running.settle().await;
    assert_eq!(script.calls(), 5, "four outages, then success");
    assert!(
        store.inbox_contains("s", message.id()),
        "handled once, recorded"
    );
    assert!(
        broker
            .published(&options.effective_dead_letter_topic())
            .is_empty(),
        "nothing dead-lettered"
    );
}

#[tokio::test]
async fn a_refusal_is_dead_lettered_at_once_with_its_reason() {
    let script = Script::new([Step::Refuse]);
    let (running, message) = consume(&script, 5).await;
    let (broker, store, options) = running.settle().await;
    assert_eq!(script.calls(), 1, "a refusal is not retried");
    let dead = broker.published(&options.effective_dead_letter_topic());
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].envelope.id, message.envelope.id);
    assert_eq!(
        dead[0]
            .properties
            .get(dead_letter::REASON)
            .map(String::as_str),
        Some("the balance would go negative")
    );
    assert_eq!(
        dead[0]
            .properties
            .get(dead_letter::DELIVERIES)
            .map(String::as_str),
        Some("1")
    );
    assert!(
        !store.inbox_contains("s", message.id()),
        "no effect recorded"
    );
}

#[tokio::test]
async fn another_failure_is_nacked_and_counted_until_the_dead_letter() {
    let script = Script::new([Step::Fail, Step::Fail]);
    let (running, message) = consume(&script, 2).await;
    let (broker, _store, options) = running.settle().await;
    assert_eq!(script.calls(), 2, "delivered max_deliveries times");
    let dead = broker.published(&options.effective_dead_letter_topic());
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].envelope.id, message.envelope.id);
    assert_eq!(
        dead[0]
            .properties
            .get(dead_letter::DELIVERIES)
            .map(String::as_str),
        Some("2")
    );
}

#[tokio::test]
async fn a_failure_then_success_is_handled_on_the_redelivery() {
    let script = Script::new([Step::Fail]);
    let (running, message) = consume(&script, 5).await;
    let succeeded = script.succeeded.clone();
    tokio::time::timeout(Duration::from_secs(10), succeeded.notified())
        .await
        .expect("the redelivery succeeded");
    let (broker, store, options) = running.settle().await;
    assert_eq!(script.calls(), 2);
    assert!(store.inbox_contains("s", message.id()));
    assert!(broker
        .published(&options.effective_dead_letter_topic())
        .is_empty());
}

#[tokio::test]
async fn the_loop_reports_down_during_an_outage_and_up_after_it() {
    let health = Health::new();
    let part = health.part("consumer:cuentas");
    let script = Script::new([Step::UnavailableUntilOver]);
    let (running, message) = consume_reporting(&script, 1, part.clone()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = part.status().unwrap();
        if !status.up && status.detail.contains("database restarting") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reported down: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(health.report().down(), ["consumer:cuentas"]);
    script
        .outage_over
        .store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(10), script.succeeded.notified())
        .await
        .expect("handled once the outage is over");
    let (broker, store, options) = running.settle().await;
    assert!(part.status().unwrap().up, "up again after the outage");
    assert!(store.inbox_contains("s", message.id()));
    assert!(broker
        .published(&options.effective_dead_letter_topic())
        .is_empty());
}

/// A consumer whose receive fails while the broker is away, then waits: nothing to deliver.
struct IdleAfterOutage {
    failures: u32,
    options: SubscriptionOptions,
}

#[seedwork::async_trait]
impl seedwork::messaging::Consumer for IdleAfterOutage {
    async fn receive(&mut self) -> Result<seedwork::messaging::Delivery> {
        if self.failures > 0 {
            self.failures -= 1;
            return Err(Error::unavailable("broker restarting"));
        }
        std::future::pending().await
    }
    async fn ack(&mut self, _: &seedwork::messaging::Delivery) -> Result<()> {
        Ok(())
    }
    async fn nack(&mut self, _: &seedwork::messaging::Delivery) -> Result<()> {
        Ok(())
    }
    async fn reject(&mut self, _: &seedwork::messaging::Delivery, _: &str) -> Result<()> {
        Ok(())
    }
    fn options(&self) -> &SubscriptionOptions {
        &self.options
    }
}

/// A consumer with no traffic after an outage reports itself up again once its receive waits
/// without failing; it does not stay down until a message happens to come.
#[tokio::test]
async fn an_idle_consumer_reports_up_after_an_outage_without_a_message() {
    let health = Health::new();
    let part = health.part("consumer:inactivo");
    let bus = Bus::builder()
        .store(Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
    let consumer = IdleAfterOutage {
        failures: 2,
        options: SubscriptionOptions::new("inactivo", "s"),
    };
    let options = ConsumeOptions::new()
        .report_to(part.clone())
        .outage(OutagePolicy {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        });
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        bus.consume_with(Box::new(consumer), &options, async {
            let _ = stopped.await;
        })
        .await
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut was_down = false;
    loop {
        let status = part.status().unwrap();
        was_down |= !status.up && status.detail.contains("broker restarting");
        if was_down && status.up {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "down {was_down}, then never up: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops on shutdown")
        .expect("no panic")
        .expect("no error");
}
