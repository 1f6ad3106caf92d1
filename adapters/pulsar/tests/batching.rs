//! Producer batching against a real Pulsar broker: a batch is one broker entry, and the broker
//! acknowledges entries, so the consumer must acknowledge a batch only once all of its
//! messages are settled, or an unsettled one is lost when the consumer goes away.
//!
//! The design being checked: an entry with a message unsettled stays unacknowledged on the
//! broker, and a consumer that comes after gets the whole entry again (the messages already
//! handled too: at least once, the inbox deduplicates them); once every message of the entry
//! is acked, nothing of it comes again.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::StreamExt;
use seedwork::messaging::{Consumer, Delivery, Publisher, Subscriber, SubscriptionOptions};
use seedwork::testing::contract::broker::{expect_quiet, n_of, ping, unique_topic};
use seedwork_pulsar::pulsar::{self, TokioExecutor};
use seedwork_pulsar::{Batching, PulsarBroker};

/// Messages per batch in these tests.
const BATCH: u32 = 3;
/// How long a test waits for an expected delivery.
const DEADLINE: Duration = Duration::from_secs(15);

/// A broker whose batches hold exactly `BATCH` messages: the delay is long, so a batch is
/// sent when it is full, not before.
async fn batching_broker() -> PulsarBroker {
    PulsarBroker::builder(support::url())
        .batching(
            Batching::on()
                .max_messages(BATCH)
                .max_delay(Duration::from_secs(5)),
        )
        .connect()
        .await
        .expect("Pulsar is reachable (scripts/services up pulsar)")
}

/// Publishes pings `first..first + BATCH` concurrently, so they fill one batch.
async fn publish_one_batch(broker: &PulsarBroker, topic: &str, first: u32) {
    let messages: Vec<_> = (first..first + BATCH)
        .map(|n| ping(topic, n, Some(&format!("key-{n}"))))
        .collect();
    let results = tokio::time::timeout(
        DEADLINE,
        futures_util::future::join_all(messages.iter().map(|m| broker.publish(m))),
    )
    .await
    .expect("the batch is published in time");
    for result in results {
        result.expect("published");
    }
}

/// Receives exactly `count` deliveries, each within the deadline, and returns them.
async fn receive_n(consumer: &mut dyn Consumer, count: usize) -> Vec<Delivery> {
    let mut deliveries = Vec::new();
    while deliveries.len() < count {
        match tokio::time::timeout(DEADLINE, consumer.receive()).await {
            Ok(Ok(delivery)) => deliveries.push(delivery),
            Ok(Err(error)) => panic!("receive failed: {error}"),
            Err(_) => panic!(
                "only {:?} of {count} deliveries within {DEADLINE:?}",
                deliveries.iter().map(n_of).collect::<Vec<_>>()
            ),
        }
    }
    deliveries
}

fn numbers(deliveries: &[Delivery]) -> BTreeSet<u32> {
    deliveries.iter().map(n_of).collect()
}

/// A raw consumer of `topic` on a subscription of its own, to see where the broker stored the
/// messages.
async fn inspector(topic: &str) -> pulsar::Consumer<Vec<u8>, TokioExecutor> {
    let build = async { support::raw_consumer(&support::raw_client().await, topic).await };
    tokio::time::timeout(DEADLINE, build)
        .await
        .expect("the raw consumer subscribes in time")
}

/// The distinct `(ledger, entry)` pairs among `positions`: the broker entries they fill.
fn entries(positions: &[Position]) -> BTreeSet<(u64, u64)> {
    positions.iter().map(|p| (p.0, p.1)).collect()
}

/// Where the broker stored a message: `(ledger, entry, batch index, batch size)`.
type Position = (u64, u64, Option<i32>, Option<i32>);

/// The broker positions `(ledger, entry, batch index, batch size)` of the next `count`
/// messages a raw consumer of `subscription` gets.
async fn raw_positions(
    consumer: &mut pulsar::Consumer<Vec<u8>, TokioExecutor>,
    count: usize,
) -> Vec<Position> {
    let mut positions = Vec::new();
    while positions.len() < count {
        let message = tokio::time::timeout(DEADLINE, consumer.next())
            .await
            .expect("the raw consumer gets the batch in time")
            .expect("the stream goes on")
            .expect("a message");
        let id = &message.message_id.id;
        positions.push((
            id.ledger_id,
            id.entry_id,
            id.batch_index,
            message.payload.metadata.num_messages_in_batch,
        ));
        consumer.ack(&message).await.expect("raw ack");
    }
    positions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar: scripts/services up pulsar"]
async fn a_batch_with_a_message_unacked_is_redelivered_whole_and_once_acked_never_again() {
    let broker = batching_broker().await;
    let topic = unique_topic("batch-ack");
    let options = SubscriptionOptions::new(&topic, "s");
    let mut consumer = broker.subscribe(options.clone()).await.expect("subscribed");
    // A second subscription read raw, to see where the broker stored the messages.
    let mut inspect = inspector(&topic).await;

    publish_one_batch(&broker, &topic, 1).await;
    let positions = raw_positions(&mut inspect, BATCH as usize).await;
    let entries = entries(&positions);
    assert_eq!(
        entries.len(),
        1,
        "the three messages are one entry: {positions:?}"
    );
    assert!(
        positions.iter().all(|p| p.3 == Some(BATCH as i32)),
        "a batch of {BATCH}: {positions:?}"
    );

    // Ack all but one (the middle one), then go away.
    let deliveries = receive_n(&mut *consumer, BATCH as usize).await;
    assert_eq!(numbers(&deliveries), BTreeSet::from([1, 2, 3]));
    for delivery in deliveries.iter().filter(|d| n_of(d) != 2) {
        consumer.ack(delivery).await.expect("acked");
    }
    drop(consumer);

    // The entry was not acknowledged: it comes again, whole, exactly once.
    let mut consumer = broker.subscribe(options.clone()).await.expect("subscribed");
    let again = receive_n(&mut *consumer, BATCH as usize).await;
    assert_eq!(
        again.iter().map(n_of).collect::<BTreeSet<_>>(),
        BTreeSet::from([1, 2, 3]),
        "the unacked message comes again with its batch siblings"
    );
    let first_ids: BTreeSet<_> = deliveries
        .iter()
        .map(|d| d.message.id().to_string())
        .collect();
    let again_ids: BTreeSet<_> = again.iter().map(|d| d.message.id().to_string()).collect();
    assert_eq!(
        first_ids, again_ids,
        "same message ids: the inbox recognises the duplicates"
    );
    expect_quiet(&mut *consumer).await;

    // All acked now: nothing comes again, to this consumer or the next.
    for delivery in &again {
        consumer.ack(delivery).await.expect("acked");
    }
    drop(consumer);
    let mut consumer = broker.subscribe(options).await.expect("subscribed");
    expect_quiet(&mut *consumer).await;
    // And the subscription goes on with what is published next.
    publish_one_batch(&broker, &topic, 4).await;
    let next = receive_n(&mut *consumer, BATCH as usize).await;
    assert_eq!(numbers(&next), BTreeSet::from([4, 5, 6]));
    for delivery in &next {
        consumer.ack(delivery).await.expect("acked");
    }
    expect_quiet(&mut *consumer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar: scripts/services up pulsar"]
async fn a_nacked_message_keeps_its_batch_open_until_it_is_settled() {
    let broker = batching_broker().await;
    let topic = unique_topic("batch-nack");
    let options = SubscriptionOptions::new(&topic, "s").retry(seedwork::messaging::RetryPolicy {
        max_deliveries: 5,
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_millis(200),
        multiplier: 1,
    });
    let mut consumer = broker.subscribe(options.clone()).await.expect("subscribed");
    publish_one_batch(&broker, &topic, 1).await;

    let deliveries = receive_n(&mut *consumer, BATCH as usize).await;
    for delivery in &deliveries {
        if n_of(delivery) == 3 {
            consumer.nack(delivery).await.expect("nacked");
        } else {
            consumer.ack(delivery).await.expect("acked");
        }
    }
    // The nacked one comes back after its backoff, from this consumer; its siblings do not.
    let retried = receive_n(&mut *consumer, 1).await;
    assert_eq!(n_of(&retried[0]), 3);
    assert_eq!(retried[0].attempt, 2);
    expect_quiet(&mut *consumer).await;
    // Gone before settling it: its entry is still open on the broker and comes again whole.
    drop(consumer);
    let mut consumer = broker.subscribe(options.clone()).await.expect("subscribed");
    let again = receive_n(&mut *consumer, BATCH as usize).await;
    assert_eq!(numbers(&again), BTreeSet::from([1, 2, 3]));
    expect_quiet(&mut *consumer).await;
    for delivery in &again {
        consumer.ack(delivery).await.expect("acked");
    }
    drop(consumer);

    // Every message of the entry settled: the entry was acknowledged, nothing comes again.
    let mut consumer = broker.subscribe(options).await.expect("subscribed");
    expect_quiet(&mut *consumer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar: scripts/services up pulsar"]
async fn a_lone_message_is_not_held_by_batching() {
    let broker = PulsarBroker::builder(support::url())
        .batching(Batching::on())
        .connect()
        .await
        .expect("Pulsar is reachable (scripts/services up pulsar)");
    let topic = unique_topic("batch-lone");
    let mut consumer = broker
        .subscribe(SubscriptionOptions::new(&topic, "s"))
        .await
        .expect("subscribed");
    // The send timeout is 10 s; a lone message must be sent after the batch delay, not when
    // a batch fills (which would never happen here).
    tokio::time::timeout(
        Duration::from_secs(5),
        broker.publish(&ping(&topic, 1, None)),
    )
    .await
    .expect("a lone message is published without waiting for a full batch")
    .expect("published");
    let delivery = receive_n(&mut *consumer, 1).await;
    assert_eq!(n_of(&delivery[0]), 1);
    consumer.ack(&delivery[0]).await.expect("acked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar: scripts/services up pulsar"]
async fn an_unbatched_topic_keeps_one_entry_per_message_under_batching() {
    let topic = unique_topic("batch-exempt");
    let broker = PulsarBroker::builder(support::url())
        .batching(
            Batching::on()
                .max_messages(BATCH)
                .max_delay(Duration::from_secs(5)),
        )
        .unbatched(topic.clone())
        .connect()
        .await
        .expect("Pulsar is reachable (scripts/services up pulsar)");
    let mut inspect = inspector(&topic).await;
    publish_one_batch(&broker, &topic, 1).await;
    let positions = raw_positions(&mut inspect, BATCH as usize).await;
    let entries = entries(&positions);
    assert_eq!(
        entries.len(),
        BATCH as usize,
        "one entry each: {positions:?}"
    );
    assert!(
        positions.iter().all(|p| p.3.is_none()),
        "no batch metadata: {positions:?}"
    );
}

#[test]
fn batching_is_off_unless_asked_for() {
    assert!(!Batching::default().is_enabled());
    assert!(Batching::on().is_enabled());
}
