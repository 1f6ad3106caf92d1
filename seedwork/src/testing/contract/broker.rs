//! The publisher/consumer contract suite.
//!
//! Every function takes the broker under test (anything that is both a [`Publisher`] and a
//! [`Subscriber`]) and panics with a message when the broker breaks the contract. Topics and
//! subscriptions get unique names, so the suite runs against a shared, long-lived broker. Waits
//! are bounded: [`DELIVERY_TIMEOUT`] for what must arrive, [`QUIET_PERIOD`] for what must not.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::messaging::{
    Consumer, Delivery, IntegrationEvent, IntegrationMessage, Message, MessageKind, Publisher,
    RetryPolicy, Subscriber, SubscriptionKind, SubscriptionOptions,
};

/// How long a message that must arrive may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to watch for a message that must not arrive.
pub const QUIET_PERIOD: Duration = Duration::from_millis(500);

/// The suite's payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ping {
    /// A sequence number.
    pub n: u32,
    /// Free text.
    pub text: String,
}

impl IntegrationMessage for Ping {
    const TOPIC: &'static str = "contract-pings";
    const TYPE: &'static str = "ContractPing";
    const VERSION: &'static str = "v1";
    const KIND: MessageKind = MessageKind::Event;
}
impl IntegrationEvent for Ping {}

/// A fresh topic name.
pub fn unique_topic(test: &str) -> String {
    format!("contract-{test}-{}", Uuid::new_v4().simple())
}

fn ping(topic: &str, n: u32, key: Option<&str>) -> Message {
    let mut message = Message::encode(
        &Ping {
            n,
            text: format!("ping {n}"),
        },
        "contract",
    )
    .expect("encodes");
    message.topic = topic.to_string();
    message.key = key.map(str::to_string);
    message
}

fn n_of(delivery: &Delivery) -> u32 {
    delivery
        .message
        .decode::<Ping>()
        .expect("a contract ping")
        .data
        .n
}

fn fast_retry(max_deliveries: u32) -> RetryPolicy {
    RetryPolicy {
        max_deliveries,
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(1),
        multiplier: 2,
    }
}

async fn subscribe<B: Subscriber + ?Sized>(
    broker: &B,
    options: SubscriptionOptions,
) -> Box<dyn Consumer> {
    broker.subscribe(options).await.expect("subscribe")
}

async fn publish<B: Publisher + ?Sized>(broker: &B, message: &Message) {
    broker.publish(message).await.expect("publish");
}

/// Receives one delivery within [`DELIVERY_TIMEOUT`].
pub async fn expect_delivery(consumer: &mut dyn Consumer) -> Delivery {
    match tokio::time::timeout(DELIVERY_TIMEOUT, consumer.receive()).await {
        Ok(Ok(delivery)) => delivery,
        Ok(Err(error)) => panic!("receive failed: {error}"),
        Err(_) => panic!("nothing delivered within {DELIVERY_TIMEOUT:?}"),
    }
}

/// Asserts nothing is delivered during [`QUIET_PERIOD`].
pub async fn expect_quiet(consumer: &mut dyn Consumer) {
    if let Ok(result) = tokio::time::timeout(QUIET_PERIOD, consumer.receive()).await {
        panic!("expected no delivery, got {result:?}");
    }
}

/// Topic, key, every envelope field, properties and data arrive intact; an acked message is not
/// redelivered.
pub async fn publish_then_receive<B: Publisher + Subscriber + ?Sized>(broker: &B) {
    let topic = unique_topic("roundtrip");
    let mut consumer = subscribe(broker, SubscriptionOptions::new(&topic, "s")).await;
    let sent = ping(&topic, 1, Some("k-1")).with_property("correlation_id", "abc");
    publish(broker, &sent).await;
    let delivery = expect_delivery(&mut *consumer).await;
    assert_eq!(delivery.attempt, 1, "first delivery");
    assert_eq!(delivery.message, sent, "message arrives intact");
    consumer.ack(&delivery).await.expect("ack");
    expect_quiet(&mut *consumer).await;
    // An acknowledgement is for good: a new consumer of the subscription does not get it again.
    drop(consumer);
    let mut again = subscribe(broker, SubscriptionOptions::new(&topic, "s")).await;
    expect_quiet(&mut *again).await;
}

/// Every subscription of a topic gets every message.
pub async fn every_subscription_gets_every_message<B: Publisher + Subscriber + ?Sized>(broker: &B) {
    let topic = unique_topic("fanout");
    let mut first = subscribe(broker, SubscriptionOptions::new(&topic, "first")).await;
    let mut second = subscribe(broker, SubscriptionOptions::new(&topic, "second")).await;
    for n in 0..3 {
        publish(broker, &ping(&topic, n, None)).await;
    }
    for consumer in [&mut first, &mut second] {
        let mut got = BTreeSet::new();
        for _ in 0..3 {
            let delivery = expect_delivery(&mut **consumer).await;
            got.insert(n_of(&delivery));
            consumer.ack(&delivery).await.expect("ack");
        }
        assert_eq!(got, BTreeSet::from([0, 1, 2]));
    }
}

/// Two consumers of one Shared subscription: every message arrives once, at one of them.
pub async fn shared_subscription_delivers_each_message_once<B: Publisher + Subscriber + ?Sized>(
    broker: &B,
) {
    let topic = unique_topic("shared");
    let options = SubscriptionOptions::new(&topic, "workers");
    let mut a = subscribe(broker, options.clone()).await;
    let mut b = subscribe(broker, options).await;
    const COUNT: u32 = 20;
    for n in 0..COUNT {
        publish(broker, &ping(&topic, n, None)).await;
    }
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    let mut total = 0;
    while total < COUNT {
        let next = tokio::select! {
            d = a.receive() => (0, d),
            d = b.receive() => (1, d),
            _ = tokio::time::sleep(DELIVERY_TIMEOUT) => panic!("only {total} of {COUNT} arrived"),
        };
        let (which, delivery) = (next.0, next.1.expect("receive"));
        *seen.entry(n_of(&delivery)).or_default() += 1;
        if which == 0 {
            a.ack(&delivery).await.expect("ack");
        } else {
            b.ack(&delivery).await.expect("ack");
        }
        total += 1;
    }
    assert_eq!(
        seen.len(),
        COUNT as usize,
        "every message arrived: {seen:?}"
    );
    assert!(seen.values().all(|c| *c == 1), "none twice: {seen:?}");
    expect_quiet(&mut *a).await;
    expect_quiet(&mut *b).await;
}

/// A nacked message comes back with the next attempt number, not before the backoff.
pub async fn nack_redelivers_after_backoff<B: Publisher + Subscriber + ?Sized>(broker: &B) {
    let topic = unique_topic("nack");
    let retry = fast_retry(5);
    let mut consumer = subscribe(
        broker,
        SubscriptionOptions::new(&topic, "s").retry(retry.clone()),
    )
    .await;
    publish(broker, &ping(&topic, 7, None)).await;
    let first = expect_delivery(&mut *consumer).await;
    assert_eq!(first.attempt, 1);
    let nacked_at = tokio::time::Instant::now();
    consumer.nack(&first).await.expect("nack");
    let second = expect_delivery(&mut *consumer).await;
    let waited = nacked_at.elapsed();
    assert_eq!(n_of(&second), 7);
    assert_eq!(second.attempt, 2, "the redelivery counts as attempt 2");
    assert!(
        waited >= retry.backoff(1),
        "redelivered after {waited:?}, before the {:?} backoff",
        retry.backoff(1)
    );
    consumer.ack(&second).await.expect("ack");
    expect_quiet(&mut *consumer).await;
}

/// After `max_deliveries` nacks the message goes to the dead-letter topic, still decodable, and
/// stops coming back.
pub async fn dead_letter_after_max_deliveries<B: Publisher + Subscriber + ?Sized>(broker: &B) {
    let topic = unique_topic("dlq");
    let dead_letters = format!("{topic}-dead");
    let mut graveyard = subscribe(broker, SubscriptionOptions::new(&dead_letters, "inspect")).await;
    let mut consumer = subscribe(
        broker,
        SubscriptionOptions::new(&topic, "s")
            .retry(RetryPolicy {
                initial_backoff: Duration::from_millis(20),
                ..fast_retry(3)
            })
            .dead_letter_topic(&dead_letters),
    )
    .await;
    let sent = ping(&topic, 9, Some("poison"));
    publish(broker, &sent).await;
    for attempt in 1..=3 {
        let delivery = expect_delivery(&mut *consumer).await;
        assert_eq!(delivery.attempt, attempt);
        consumer.nack(&delivery).await.expect("nack");
    }
    let dead = expect_delivery(&mut *graveyard).await;
    assert_eq!(
        dead.message.envelope.id, sent.envelope.id,
        "the same message"
    );
    let decoded = dead.message.decode::<Ping>().expect("dead letter decodes");
    assert_eq!(decoded.data.n, 9);
    graveyard.ack(&dead).await.expect("ack");
    expect_quiet(&mut *consumer).await;
}

/// On a Shared subscription, a key's messages arrive in publish order, even when the first is
/// nacked: the second does not overtake it.
pub async fn order_per_key_survives_a_nack<B: Publisher + Subscriber + ?Sized>(broker: &B) {
    let topic = unique_topic("order");
    let mut consumer = subscribe(
        broker,
        SubscriptionOptions::new(&topic, "s").retry(fast_retry(5)),
    )
    .await;
    for n in 0..3 {
        publish(broker, &ping(&topic, n, Some("same-key"))).await;
    }
    let first = expect_delivery(&mut *consumer).await;
    assert_eq!(n_of(&first), 0);
    consumer.nack(&first).await.expect("nack");
    let mut order = Vec::new();
    while order.len() < 3 {
        let delivery = expect_delivery(&mut *consumer).await;
        order.push(n_of(&delivery));
        consumer.ack(&delivery).await.expect("ack");
    }
    assert_eq!(order, vec![0, 1, 2], "the nacked message keeps its place");
}

/// Deliveries of a consumer that goes away unacknowledged go to another consumer.
pub async fn unacked_deliveries_of_a_dropped_consumer_are_redelivered<
    B: Publisher + Subscriber + ?Sized,
>(
    broker: &B,
) {
    let topic = unique_topic("drop");
    let options = SubscriptionOptions::new(&topic, "s");
    let mut doomed = subscribe(broker, options.clone()).await;
    publish(broker, &ping(&topic, 3, None)).await;
    let taken = expect_delivery(&mut *doomed).await;
    assert_eq!(n_of(&taken), 3);
    drop(doomed);
    let mut survivor = subscribe(broker, options).await;
    let again = expect_delivery(&mut *survivor).await;
    assert_eq!(n_of(&again), 3, "the unacked message comes back");
    assert!(again.attempt >= 2, "it counts as a redelivery");
    survivor.ack(&again).await.expect("ack");
}

/// Exclusive refuses a second consumer.
pub async fn exclusive_refuses_a_second_consumer<B: Publisher + Subscriber + ?Sized>(broker: &B) {
    let topic = unique_topic("exclusive");
    let options = SubscriptionOptions::new(&topic, "only").kind(SubscriptionKind::Exclusive);
    let _first = subscribe(broker, options.clone()).await;
    assert!(
        broker.subscribe(options).await.is_err(),
        "a second exclusive consumer must be refused"
    );
}

/// Failover: one consumer gets everything; when it goes, the other takes over.
pub async fn failover_delivers_to_one_consumer_and_fails_over<
    B: Publisher + Subscriber + ?Sized,
>(
    broker: &B,
) {
    let topic = unique_topic("failover");
    let options = SubscriptionOptions::new(&topic, "s").kind(SubscriptionKind::Failover);
    let mut active = subscribe(broker, options.clone()).await;
    let mut standby = subscribe(broker, options).await;
    for n in 0..3 {
        publish(broker, &ping(&topic, n, None)).await;
    }
    for n in 0..3 {
        let delivery = expect_delivery(&mut *active).await;
        assert_eq!(n_of(&delivery), n);
        active.ack(&delivery).await.expect("ack");
    }
    expect_quiet(&mut *standby).await;
    drop(active);
    publish(broker, &ping(&topic, 3, None)).await;
    let delivery = expect_delivery(&mut *standby).await;
    assert_eq!(n_of(&delivery), 3, "the standby took over");
    standby.ack(&delivery).await.expect("ack");
}

/// KeyShared: all messages of a key go to one consumer.
pub async fn key_shared_keeps_a_key_on_one_consumer<B: Publisher + Subscriber + ?Sized>(
    broker: &B,
) {
    let topic = unique_topic("keyshared");
    let options = SubscriptionOptions::new(&topic, "s").kind(SubscriptionKind::KeyShared);
    let mut a = subscribe(broker, options.clone()).await;
    let mut b = subscribe(broker, options).await;
    let keys = ["k0", "k1", "k2", "k3"];
    for n in 0..12u32 {
        publish(broker, &ping(&topic, n, Some(keys[n as usize % 4]))).await;
    }
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..12 {
        let (which, delivery) = tokio::select! {
            d = a.receive() => (0, d.expect("receive")),
            d = b.receive() => (1, d.expect("receive")),
            _ = tokio::time::sleep(DELIVERY_TIMEOUT) => panic!("a message did not arrive"),
        };
        let key = delivery.message.key.clone().expect("keyed");
        let previous = *owner.entry(key.clone()).or_insert(which);
        assert_eq!(previous, which, "key {key} went to two consumers");
        if which == 0 {
            a.ack(&delivery).await.expect("ack");
        } else {
            b.ack(&delivery).await.expect("ack");
        }
    }
    assert_eq!(owner.len(), 4);
}

/// A subscription does not get messages published before it existed.
pub async fn no_messages_from_before_the_subscription<B: Publisher + Subscriber + ?Sized>(
    broker: &B,
) {
    let topic = unique_topic("late");
    let mut early = subscribe(broker, SubscriptionOptions::new(&topic, "early")).await;
    publish(broker, &ping(&topic, 1, None)).await;
    let delivery = expect_delivery(&mut *early).await;
    early.ack(&delivery).await.expect("ack");
    let mut late = subscribe(broker, SubscriptionOptions::new(&topic, "late")).await;
    expect_quiet(&mut *late).await;
    publish(broker, &ping(&topic, 2, None)).await;
    let delivery = expect_delivery(&mut *late).await;
    assert_eq!(n_of(&delivery), 2);
    late.ack(&delivery).await.expect("ack");
}

/// Acknowledging a delivery twice is an error, not a panic.
pub async fn double_ack_is_an_error<B: Publisher + Subscriber + ?Sized>(broker: &B) {
    let topic = unique_topic("double-ack");
    let mut consumer = subscribe(broker, SubscriptionOptions::new(&topic, "s")).await;
    publish(broker, &ping(&topic, 1, None)).await;
    let delivery = expect_delivery(&mut *consumer).await;
    consumer.ack(&delivery).await.expect("first ack");
    assert!(
        consumer.ack(&delivery).await.is_err(),
        "second ack must fail"
    );
}

/// Runs every check.
pub async fn run_all<B: Publisher + Subscriber + ?Sized>(broker: &B) {
    publish_then_receive(broker).await;
    every_subscription_gets_every_message(broker).await;
    shared_subscription_delivers_each_message_once(broker).await;
    nack_redelivers_after_backoff(broker).await;
    dead_letter_after_max_deliveries(broker).await;
    order_per_key_survives_a_nack(broker).await;
    unacked_deliveries_of_a_dropped_consumer_are_redelivered(broker).await;
    exclusive_refuses_a_second_consumer(broker).await;
    failover_delivers_to_one_consumer_and_fails_over(broker).await;
    key_shared_keeps_a_key_on_one_consumer(broker).await;
    no_messages_from_before_the_subscription(broker).await;
    double_ack_is_an_error(broker).await;
}
