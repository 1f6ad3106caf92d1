//! The publisher/consumer contract suite.
//!
//! Every check is a public `async fn` taking the broker under test (anything that is both a
//! [`Publisher`] and a [`Subscriber`]) and panicking with a message when the broker breaks the
//! contract; [`run_all`] runs them all. An adapter calls them from its own `#[tokio::test]`s, or
//! generates one test per check with [`broker_contract_tests!`](crate::broker_contract_tests).
//!
//! The checks are written for a real, networked broker as much as for the embedded one:
//!
//! - topics get unique names ([`unique_topic`]), so the suite runs against a shared,
//!   long-lived broker whose topics persist between runs, and checks may run concurrently;
//! - waits are bounded: [`DELIVERY_TIMEOUT`] for what must arrive, [`QUIET_PERIOD`] for what
//!   must not;
//! - timing is only checked from below (a redelivery must not come *before* its backoff);
//! - they do not depend on which consumer of a Shared or KeyShared subscription the broker
//!   picks, nor on the active consumer of a Failover subscription being the first attached,
//!   nor on a dropped consumer's redelivery counting as a new attempt.
//!
//! What the suite requires beyond the [`Consumer`] docs: `receive` is cancel-safe (the checks
//! race two consumers in `tokio::select!`), a key's messages are delivered in publish order on
//! a Shared subscription even across a nack, and settling a delivery twice is an
//! [`Error::Broker`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;
use crate::messaging::{
    dead_letter, Consumer, Delivery, IntegrationEvent, IntegrationMessage, Message, MessageKind,
    Publisher, RetryPolicy, Subscriber, SubscriptionKind, SubscriptionOptions, CORRELATION_ID,
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

/// A fresh topic name: `contract-{test}-{uuid}`.
pub fn unique_topic(test: &str) -> String {
    format!("contract-{test}-{}", Uuid::new_v4().simple())
}

/// A [`Ping`] numbered `n` for `topic`, with the given ordering key.
pub fn ping(topic: &str, n: u32, key: Option<&str>) -> Message {
    let mut message = Message::encode(
        &Ping {
            n,
            text: format!("ping {n}"),
        },
        "contract",
    )
    .expect("a Ping encodes");
    message.topic = topic.to_string();
    message.key = key.map(str::to_string);
    message
}

/// The number of the [`Ping`] a delivery carries (panics on anything else).
pub fn n_of(delivery: &Delivery) -> u32 {
    delivery
        .message
        .decode::<Ping>()
        .expect("a contract Ping")
        .data
        .n
}

fn retry(max_deliveries: u32, initial_backoff: Duration) -> RetryPolicy {
    RetryPolicy {
        max_deliveries,
        initial_backoff,
        max_backoff: Duration::from_secs(2),
        multiplier: 2,
    }
}

async fn subscribe<B: Subscriber + ?Sized>(
    broker: &B,
    options: SubscriptionOptions,
) -> Box<dyn Consumer> {
    match broker.subscribe(options.clone()).await {
        Ok(consumer) => consumer,
        Err(error) => panic!(
            "subscribing to `{}` as `{}` failed: {error}",
            options.topic, options.subscription
        ),
    }
}

async fn publish<B: Publisher + ?Sized>(broker: &B, message: &Message) {
    if let Err(error) = broker.publish(message).await {
        panic!("publishing to `{}` failed: {error}", message.topic);
    }
}

async fn ack(consumer: &mut dyn Consumer, delivery: &Delivery) {
    if let Err(error) = consumer.ack(delivery).await {
        panic!("ack of message {} failed: {error}", n_of(delivery));
    }
}

async fn nack(consumer: &mut dyn Consumer, delivery: &Delivery) {
    if let Err(error) = consumer.nack(delivery).await {
        panic!("nack of message {} failed: {error}", n_of(delivery));
    }
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

/// Receives from whichever of two consumers has a delivery first, within
/// [`DELIVERY_TIMEOUT`]; returns 0 or 1 for the consumer and the delivery.
async fn expect_either(a: &mut dyn Consumer, b: &mut dyn Consumer) -> (usize, Delivery) {
    let (which, result) = tokio::select! {
        result = a.receive() => (0, result),
        result = b.receive() => (1, result),
        _ = tokio::time::sleep(DELIVERY_TIMEOUT) => {
            panic!("nothing delivered to either consumer within {DELIVERY_TIMEOUT:?}")
        }
    };
    match result {
        Ok(delivery) => (which, delivery),
        Err(error) => panic!("receive failed: {error}"),
    }
}

/// 1. Topic, key, every envelope field, properties and data arrive intact, as attempt 1; an
///    acked message is not redelivered, not even to a new consumer of the subscription.
pub async fn publish_then_receive<B: Publisher + Subscriber + ?Sized>(broker: &B) {
    let topic = unique_topic("roundtrip");
    let options = SubscriptionOptions::new(&topic, "s");
    let mut consumer = subscribe(broker, options.clone()).await;
    let sent = ping(&topic, 1, Some("k-1"))
        .with_property(CORRELATION_ID, "corr-abc")
        .with_property("tenant", "ñandú ✓");
    publish(broker, &sent).await;
    let delivery = expect_delivery(&mut *consumer).await;
    assert_eq!(delivery.attempt, 1, "the first delivery is attempt 1");
    assert_eq!(delivery.message.topic, sent.topic, "topic");
    assert_eq!(delivery.message.key, sent.key, "key");
    assert_eq!(delivery.message.envelope, sent.envelope, "envelope");
    assert_eq!(delivery.message.properties, sent.properties, "properties");
    assert_eq!(delivery.message, sent, "the message arrives intact");
    let decoded = delivery.message.decode::<Ping>().expect("decodes");
    assert_eq!(
        decoded.data,
        Ping {
            n: 1,
            text: "ping 1".into()
        }
    );
    ack(&mut *consumer, &delivery).await;
    expect_quiet(&mut *consumer).await;
    // An acknowledgement is for good: a new consumer of the subscription does not get it again.
    drop(consumer);
    let mut again = subscribe(broker, options).await;
    expect_quiet(&mut *again).await;
}

/// 2. Every subscription of a topic gets every message, whatever the others do with theirs.
pub async fn every_subscription_gets_every_message<B: Publisher + Subscriber + ?Sized>(broker: &B) {
    let topic = unique_topic("fanout");
    let mut first = subscribe(broker, SubscriptionOptions::new(&topic, "first")).await;
    let mut second = subscribe(broker, SubscriptionOptions::new(&topic, "second")).await;
    for n in 0..3 {
        publish(broker, &ping(&topic, n, None)).await;
    }
    for (name, consumer) in [("first", &mut first), ("second", &mut second)] {
        let mut got = BTreeSet::new();
        for _ in 0..3 {
            let delivery = expect_delivery(&mut **consumer).await;
            got.insert(n_of(&delivery));
            ack(&mut **consumer, &delivery).await;
        }
        assert_eq!(
            got,
            BTreeSet::from([0, 1, 2]),
            "subscription `{name}` got every message"
        );
        expect_quiet(&mut **consumer).await;
    }
}

/// 3. Two consumers of one Shared subscription: every message arrives, each at exactly one of
///    them, once.
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
    let mut seen: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for _ in 0..COUNT {
        let (which, delivery) = expect_either(&mut *a, &mut *b).await;
        seen.entry(n_of(&delivery)).or_default().push(which);
        let consumer = if which == 0 { &mut a } else { &mut b };
        ack(&mut **consumer, &delivery).await;
    }
    assert!(
        seen.values().all(|at| at.len() == 1),
        "a message was delivered twice (message → consumers): {seen:?}"
    );
    assert_eq!(
        seen.len(),
        COUNT as usize,
        "every message arrived: {seen:?}"
    );
    expect_quiet(&mut *a).await;
    expect_quiet(&mut *b).await;
}

/// 4. A nacked message comes back as attempt 2, not before the policy's backoff has elapsed.
pub async fn nack_redelivers_after_backoff<B: Publisher + Subscriber + ?Sized>(broker: &B) {
    let topic = unique_topic("nack");
    let policy = retry(5, Duration::from_millis(300));
    let mut consumer = subscribe(
        broker,
        SubscriptionOptions::new(&topic, "s").retry(policy.clone()),
    )
    .await;
    publish(broker, &ping(&topic, 7, None)).await;
    let first = expect_delivery(&mut *consumer).await;
    assert_eq!(first.attempt, 1);
    let nacked_at = tokio::time::Instant::now();
    nack(&mut *consumer, &first).await;
    let second = expect_delivery(&mut *consumer).await;
    let waited = nacked_at.elapsed();
    assert_eq!(n_of(&second), 7, "the nacked message comes back");
    assert_eq!(second.attempt, 2, "the redelivery is attempt 2");
    assert!(
        waited >= policy.backoff(1),
        "redelivered after {waited:?}, before the {:?} backoff",
        policy.backoff(1)
    );
    ack(&mut *consumer, &second).await;
    expect_quiet(&mut *consumer).await;
}

/// 5. After `max_deliveries` nacks the message goes to the dead-letter topic, still decodable
///    as the original payload, and stops coming back on the original subscription. Each
///    redelivery waits for its (growing) backoff. The dead letter carries every
///    [`dead_letter`] property: the original topic, the subscription, a reason and the number
///    of deliveries.
pub async fn dead_letter_after_max_deliveries<B: Publisher + Subscriber + ?Sized>(broker: &B) {
    let topic = unique_topic("dlq");
    let dead_letters = format!("{topic}-dead");
    let policy = retry(3, Duration::from_millis(50));
    let options = SubscriptionOptions::new(&topic, "s")
        .retry(policy.clone())
        .dead_letter_topic(&dead_letters);
    assert_eq!(options.effective_dead_letter_topic(), dead_letters);
    // Subscribe to the dead-letter topic first: later subscriptions miss earlier messages.
    let mut graveyard = subscribe(broker, SubscriptionOptions::new(&dead_letters, "inspect")).await;
    let mut consumer = subscribe(broker, options).await;
    let sent = ping(&topic, 9, Some("poison")).with_property(CORRELATION_ID, "corr-dlq");
    publish(broker, &sent).await;
    let mut nacked_at: Option<tokio::time::Instant> = None;
    for attempt in 1..=policy.max_deliveries {
        let delivery = expect_delivery(&mut *consumer).await;
        if let Some(at) = nacked_at {
            let waited = at.elapsed();
            let backoff = policy.backoff(attempt - 1);
            assert!(
                waited >= backoff,
                "attempt {attempt} came after {waited:?}, before the {backoff:?} backoff"
            );
        }
        assert_eq!(delivery.attempt, attempt, "attempts are counted");
        assert_eq!(n_of(&delivery), 9);
        nacked_at = Some(tokio::time::Instant::now());
        nack(&mut *consumer, &delivery).await;
    }
    let dead = expect_delivery(&mut *graveyard).await;
    assert_eq!(
        dead.message.envelope, sent.envelope,
        "the dead letter carries the original envelope"
    );
    assert_eq!(
        dead.message.correlation_id(),
        Some("corr-dlq"),
        "the properties travel along"
    );
    let decoded = dead
        .message
        .decode::<Ping>()
        .expect("the dead letter decodes");
    assert_eq!(decoded.data.n, 9);
    let properties = &dead.message.properties;
    let expected = [
        (dead_letter::ORIGINAL_TOPIC, topic.clone()),
        (dead_letter::SUBSCRIPTION, "s".to_string()),
        (dead_letter::DELIVERIES, policy.max_deliveries.to_string()),
    ];
    for (name, value) in expected {
        assert_eq!(
            properties.get(name),
            Some(&value),
            "the dead letter's `{name}` property; it has {properties:?}"
        );
    }
    assert!(
        properties
            .get(dead_letter::REASON)
            .is_some_and(|reason| !reason.trim().is_empty()),
        "the dead letter says why in `{}`; it has {properties:?}",
        dead_letter::REASON
    );
    ack(&mut *graveyard, &dead).await;
    expect_quiet(&mut *consumer).await;
    expect_quiet(&mut *graveyard).await;
}

/// 6. On a Shared subscription, a key's messages arrive in publish order, even when the first
///    is nacked: the later ones do not overtake it. Another key's order is kept too.
pub async fn order_per_key_survives_a_nack<B: Publisher + Subscriber + ?Sized>(broker: &B) {
    let topic = unique_topic("order");
    let mut consumer = subscribe(
        broker,
        SubscriptionOptions::new(&topic, "s").retry(retry(5, Duration::from_millis(200))),
    )
    .await;
    // a: 0, 2, 4 — b: 1, 3.
    for n in 0..5 {
        let key = if n % 2 == 0 { "key-a" } else { "key-b" };
        publish(broker, &ping(&topic, n, Some(key))).await;
    }
    let first = expect_delivery(&mut *consumer).await;
    assert_eq!(n_of(&first), 0, "the first message comes first");
    nack(&mut *consumer, &first).await;
    let mut order: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for _ in 0..5 {
        let delivery = expect_delivery(&mut *consumer).await;
        let key = delivery.message.key.clone().expect("keyed");
        order.entry(key).or_default().push(n_of(&delivery));
        ack(&mut *consumer, &delivery).await;
    }
    assert_eq!(
        order.get("key-a"),
        Some(&vec![0, 2, 4]),
        "the nacked message keeps its place in its key's order: {order:?}"
    );
    assert_eq!(order.get("key-b"), Some(&vec![1, 3]), "{order:?}");
    expect_quiet(&mut *consumer).await;
}

/// 7. A delivery held by a consumer is not given to another consumer of the subscription;
///    when the holder is dropped without acking, it is redelivered to the other one.
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
    let mut survivor = subscribe(broker, options).await;
    expect_quiet(&mut *survivor).await;
    drop(doomed);
    let again = expect_delivery(&mut *survivor).await;
    assert_eq!(n_of(&again), 3, "the unacked message comes back");
    assert_eq!(again.message.envelope.id, taken.message.envelope.id);
    ack(&mut *survivor, &again).await;
    expect_quiet(&mut *survivor).await;
}

/// 8a. Exclusive refuses a second consumer with [`Error::Broker`] while the first is
///     attached, and accepts one again once it is dropped.
pub async fn exclusive_refuses_a_second_consumer<B: Publisher + Subscriber + ?Sized>(broker: &B) {
    let topic = unique_topic("exclusive");
    let options = SubscriptionOptions::new(&topic, "only").kind(SubscriptionKind::Exclusive);
    let first = subscribe(broker, options.clone()).await;
    match broker.subscribe(options.clone()).await {
        Err(Error::Broker(_)) => {}
        Err(other) => panic!("a second exclusive consumer must fail with Error::Broker: {other}"),
        Ok(_) => panic!("a second exclusive consumer must be refused"),
    }
    drop(first);
    // A networked broker may learn of the drop a little later: retry for a while.
    let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
    let mut next = loop {
        match broker.subscribe(options.clone()).await {
            Ok(consumer) => break consumer,
            Err(error) if tokio::time::Instant::now() >= deadline => {
                panic!("the subscription stayed locked after its consumer was dropped: {error}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    publish(broker, &ping(&topic, 1, None)).await;
    let delivery = expect_delivery(&mut *next).await;
    ack(&mut *next, &delivery).await;
}

/// 8b. Failover: one consumer gets everything, the other nothing; when the active one is
///     dropped, the other takes over, starting with the dropped one's unacked message.
pub async fn failover_delivers_to_one_consumer_and_fails_over<
    B: Publisher + Subscriber + ?Sized,
>(
    broker: &B,
) {
    let topic = unique_topic("failover");
    let options = SubscriptionOptions::new(&topic, "s").kind(SubscriptionKind::Failover);
    let mut a = subscribe(broker, options.clone()).await;
    let mut b = subscribe(broker, options).await;
    for n in 0..4 {
        publish(broker, &ping(&topic, n, None)).await;
    }
    // Which consumer is active is the broker's choice; the first delivery tells.
    let (active_index, first) = expect_either(&mut *a, &mut *b).await;
    let (mut active, mut standby) = if active_index == 0 { (a, b) } else { (b, a) };
    assert_eq!(n_of(&first), 0, "in publish order");
    ack(&mut *active, &first).await;
    // Messages 1–3 are waiting, yet the standby gets none of them.
    expect_quiet(&mut *standby).await;
    for n in 1..3 {
        let delivery = expect_delivery(&mut *active).await;
        assert_eq!(
            n_of(&delivery),
            n,
            "the active consumer gets everything, in order"
        );
        ack(&mut *active, &delivery).await;
    }
    let held = expect_delivery(&mut *active).await;
    assert_eq!(n_of(&held), 3);
    expect_quiet(&mut *standby).await;
    drop(active);
    let handed_over = expect_delivery(&mut *standby).await;
    assert_eq!(
        n_of(&handed_over),
        3,
        "the standby takes over the unacked message"
    );
    ack(&mut *standby, &handed_over).await;
    publish(broker, &ping(&topic, 4, None)).await;
    let delivery = expect_delivery(&mut *standby).await;
    assert_eq!(n_of(&delivery), 4, "and what is published next");
    ack(&mut *standby, &delivery).await;
}

/// 8c. KeyShared: with two consumers working concurrently, all messages of a key go to one
///     consumer, in publish order, and every message arrives once.
pub async fn key_shared_keeps_a_key_on_one_consumer<B: Publisher + Subscriber + ?Sized>(
    broker: &B,
) {
    const KEYS: u32 = 7;
    const PER_KEY: u32 = 3;
    let topic = unique_topic("keyshared");
    let options = SubscriptionOptions::new(&topic, "s").kind(SubscriptionKind::KeyShared);
    let a = subscribe(broker, options.clone()).await;
    let b = subscribe(broker, options).await;
    for n in 0..KEYS * PER_KEY {
        publish(broker, &ping(&topic, n, Some(&format!("key-{}", n % KEYS)))).await;
    }
    // (consumer, key, n) in arrival order.
    let log: Mutex<Vec<(usize, String, u32)>> = Mutex::new(Vec::new());
    let total = (KEYS * PER_KEY) as usize;
    // Each consumer processes slowly, so the other one gets its turn; at different speeds, so
    // they do not fall into a lockstep that would keep keys apart by chance.
    let work = |index: usize, mut consumer: Box<dyn Consumer>| {
        let log = &log;
        async move {
            while log.lock().map_or(0, |l| l.len()) < total {
                let delivery = match tokio::time::timeout(QUIET_PERIOD, consumer.receive()).await {
                    Ok(Ok(delivery)) => delivery,
                    Ok(Err(error)) => panic!("receive failed: {error}"),
                    Err(_) => continue,
                };
                let key = delivery.message.key.clone().expect("keyed");
                if let Ok(mut log) = log.lock() {
                    log.push((index, key, n_of(&delivery)));
                }
                tokio::time::sleep(Duration::from_millis(if index == 0 { 3 } else { 11 })).await;
                ack(&mut *consumer, &delivery).await;
            }
            consumer
        }
    };
    let both = async { tokio::join!(work(0, a), work(1, b)) };
    let Ok((mut a, mut b)) = tokio::time::timeout(DELIVERY_TIMEOUT, both).await else {
        panic!(
            "not every message arrived within {DELIVERY_TIMEOUT:?}: {:?}",
            log.lock().map(|l| l.clone())
        );
    };
    let log = log.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut owners: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    let mut order: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for (consumer, key, n) in &log {
        owners.entry(key).or_default().insert(*consumer);
        order.entry(key).or_default().push(*n);
    }
    assert_eq!(log.len(), total, "every message once: {log:?}");
    assert!(
        owners.values().all(|o| o.len() == 1),
        "a key went to both consumers (key → consumers): {owners:?}"
    );
    assert!(
        order.values().all(|ns| ns.windows(2).all(|w| w[0] < w[1])),
        "a key's messages arrived out of order: {order:?}"
    );
    assert_eq!(owners.len(), KEYS as usize);
    expect_quiet(&mut *a).await;
    expect_quiet(&mut *b).await;
}

/// 9. A subscription does not get messages published before it existed, only later ones.
pub async fn no_messages_from_before_the_subscription<B: Publisher + Subscriber + ?Sized>(
    broker: &B,
) {
    let topic = unique_topic("late");
    let mut early = subscribe(broker, SubscriptionOptions::new(&topic, "early")).await;
    publish(broker, &ping(&topic, 1, None)).await;
    let delivery = expect_delivery(&mut *early).await;
    assert_eq!(n_of(&delivery), 1);
    ack(&mut *early, &delivery).await;
    let mut late = subscribe(broker, SubscriptionOptions::new(&topic, "late")).await;
    expect_quiet(&mut *late).await;
    publish(broker, &ping(&topic, 2, None)).await;
    let delivery = expect_delivery(&mut *late).await;
    assert_eq!(
        n_of(&delivery),
        2,
        "only what was published after subscribing"
    );
    ack(&mut *late, &delivery).await;
    expect_quiet(&mut *late).await;
}

/// 10. Settling a delivery twice (ack after ack, nack after ack) is an [`Error::Broker`], not a
///     panic, and does not disturb the subscription.
pub async fn double_ack_is_an_error<B: Publisher + Subscriber + ?Sized>(broker: &B) {
    let topic = unique_topic("double-ack");
    let mut consumer = subscribe(broker, SubscriptionOptions::new(&topic, "s")).await;
    publish(broker, &ping(&topic, 1, None)).await;
    let delivery = expect_delivery(&mut *consumer).await;
    ack(&mut *consumer, &delivery).await;
    match consumer.ack(&delivery).await {
        Err(Error::Broker(_)) => {}
        Err(other) => panic!("a second ack must fail with Error::Broker: {other}"),
        Ok(()) => panic!("a second ack must fail"),
    }
    assert!(
        matches!(consumer.nack(&delivery).await, Err(Error::Broker(_))),
        "a nack after the ack must fail with Error::Broker"
    );
    expect_quiet(&mut *consumer).await;
    publish(broker, &ping(&topic, 2, None)).await;
    let next = expect_delivery(&mut *consumer).await;
    assert_eq!(n_of(&next), 2, "the consumer still works");
    ack(&mut *consumer, &next).await;
}

/// 11. A rejected delivery goes to the dead-letter topic at once, on its first attempt however
///     large `max_deliveries` is, with the caller's reason and the attempt count; it never
///     comes back, a later message of its key is delivered next, and settling it again is an
///     [`Error::Broker`].
pub async fn reject_dead_letters_at_once_with_the_reason<B: Publisher + Subscriber + ?Sized>(
    broker: &B,
) {
    let topic = unique_topic("reject");
    let dead_letters = format!("{topic}-dead");
    let options = SubscriptionOptions::new(&topic, "s")
        .retry(retry(100, Duration::from_millis(50)))
        .dead_letter_topic(&dead_letters);
    let mut graveyard = subscribe(broker, SubscriptionOptions::new(&dead_letters, "inspect")).await;
    let mut consumer = subscribe(broker, options).await;
    publish(broker, &ping(&topic, 1, Some("k"))).await;
    publish(broker, &ping(&topic, 2, Some("k"))).await;
    let refused = expect_delivery(&mut *consumer).await;
    assert_eq!(n_of(&refused), 1);
    let reason = "the domain refused it: seat 3A is taken";
    if let Err(error) = consumer.reject(&refused, reason).await {
        panic!("reject of message 1 failed: {error}");
    }
    let dead = expect_delivery(&mut *graveyard).await;
    assert_eq!(n_of(&dead), 1);
    let properties = &dead.message.properties;
    assert_eq!(
        properties.get(dead_letter::REASON).map(String::as_str),
        Some(reason),
        "the dead letter carries the caller's reason; it has {properties:?}"
    );
    assert_eq!(
        properties.get(dead_letter::DELIVERIES).map(String::as_str),
        Some("1"),
        "rejected on its first delivery; it has {properties:?}"
    );
    assert_eq!(
        properties.get(dead_letter::ORIGINAL_TOPIC),
        Some(&topic),
        "it has {properties:?}"
    );
    ack(&mut *graveyard, &dead).await;
    let next = expect_delivery(&mut *consumer).await;
    assert_eq!(
        n_of(&next),
        2,
        "the key's next message follows the rejected one"
    );
    assert!(
        matches!(
            consumer.reject(&refused, reason).await,
            Err(Error::Broker(_))
        ),
        "rejecting a settled delivery must fail with Error::Broker"
    );
    ack(&mut *consumer, &next).await;
    expect_quiet(&mut *consumer).await;
    expect_quiet(&mut *graveyard).await;
}

/// 12. A non-durable subscription delivers what is published while a consumer is attached and
///     settles it like a durable one (a nacked message comes back as attempt 2, an acked one
///     does not); a durable subscription of the same topic gets the same messages. (That a
///     non-durable subscription goes away with its last consumer is each backend's own test:
///     when a broker notices a consumer is gone is its own business.)
pub async fn non_durable_subscription_delivers_while_attached<
    B: Publisher + Subscriber + ?Sized,
>(
    broker: &B,
) {
    let topic = unique_topic("non-durable");
    let mut kept = subscribe(broker, SubscriptionOptions::new(&topic, "kept")).await;
    let mut live = subscribe(
        broker,
        SubscriptionOptions::new(&topic, "live")
            .durable(false)
            .retry(retry(5, Duration::from_millis(50))),
    )
    .await;
    publish(broker, &ping(&topic, 1, Some("k"))).await;
    publish(broker, &ping(&topic, 2, Some("k"))).await;
    let first = expect_delivery(&mut *live).await;
    assert_eq!((n_of(&first), first.attempt), (1, 1));
    nack(&mut *live, &first).await;
    let again = expect_delivery(&mut *live).await;
    assert_eq!(
        (n_of(&again), again.attempt),
        (1, 2),
        "the nacked message comes back first, as attempt 2"
    );
    ack(&mut *live, &again).await;
    let second = expect_delivery(&mut *live).await;
    assert_eq!((n_of(&second), second.attempt), (2, 1));
    ack(&mut *live, &second).await;
    expect_quiet(&mut *live).await;
    for n in 1..=2 {
        let delivery = expect_delivery(&mut *kept).await;
        assert_eq!(
            n_of(&delivery),
            n,
            "the durable subscription gets every message"
        );
        ack(&mut *kept, &delivery).await;
    }
    expect_quiet(&mut *kept).await;
}

/// 13. `unsubscribe` is refused while a consumer is attached (and deletes nothing); once the
///     consumer is gone it deletes the subscription with what it held, so a new one of the
///     same name starts empty at the end of the topic; deleting one that does not exist is
///     fine; another subscription of the topic is not touched.
pub async fn unsubscribe_deletes_an_unattached_subscription<B: Publisher + Subscriber + ?Sized>(
    broker: &B,
) {
    let topic = unique_topic("unsubscribe");
    let mut kept = subscribe(broker, SubscriptionOptions::new(&topic, "kept")).await;
    let mut gone = subscribe(broker, SubscriptionOptions::new(&topic, "gone")).await;
    publish(broker, &ping(&topic, 1, None)).await;
    assert!(
        broker.unsubscribe(&topic, "gone").await.is_err(),
        "refused while a consumer is attached"
    );
    let delivery = expect_delivery(&mut *gone).await;
    assert_eq!(n_of(&delivery), 1, "a refused unsubscribe deletes nothing");
    nack(&mut *gone, &delivery).await;
    drop(gone);
    // When a broker notices a dropped consumer is its own business: ask until it agrees.
    let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
    while let Err(error) = broker.unsubscribe(&topic, "gone").await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "unsubscribe still refused {DELIVERY_TIMEOUT:?} after the consumer went: {error}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    publish(broker, &ping(&topic, 2, None)).await;
    let mut again = subscribe(broker, SubscriptionOptions::new(&topic, "gone")).await;
    expect_quiet(&mut *again).await;
    publish(broker, &ping(&topic, 3, None)).await;
    let delivery = expect_delivery(&mut *again).await;
    assert_eq!(
        (n_of(&delivery), delivery.attempt),
        (3, 1),
        "a new subscription: nothing of the deleted one's"
    );
    ack(&mut *again, &delivery).await;
    broker
        .unsubscribe(&topic, "never-existed")
        .await
        .expect("deleting a subscription that does not exist is fine");
    for n in 1..=3 {
        let delivery = expect_delivery(&mut *kept).await;
        assert_eq!(
            n_of(&delivery),
            n,
            "the other subscription keeps everything"
        );
        ack(&mut *kept, &delivery).await;
    }
}

/// Runs every check, one after the other.
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
    reject_dead_letters_at_once_with_the_reason(broker).await;
    non_durable_subscription_delivers_while_attached(broker).await;
    unsubscribe_deletes_an_unattached_subscription(broker).await;
}
