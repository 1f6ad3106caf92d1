//! `Consumer::ready` on real Pulsar: messages the client has already received are handed out
//! without waiting, so the bus's consume loop can handle them in one unit of work; a key's
//! next message waits, there as in `receive`, until the one before it is settled.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use seedwork::messaging::{Consumer, Delivery, Publisher, RetryPolicy, Subscriber};
use seedwork::messaging::{SubscriptionKind, SubscriptionOptions};
use seedwork::testing::contract::broker::{expect_quiet, n_of, ping, unique_topic};
use tokio::time::Instant;

/// How long a test waits for what it expects.
const DEADLINE: Duration = Duration::from_secs(15);

async fn receive(consumer: &mut dyn Consumer) -> Delivery {
    tokio::time::timeout(DEADLINE, consumer.receive())
        .await
        .expect("a delivery in time")
        .expect("received")
}

/// Calls `ready` until `count` deliveries came out of it or the deadline passes; `ready` never
/// waits, so the loop yields between calls while the client is still receiving.
async fn drain_ready(consumer: &mut dyn Consumer, count: usize) -> Vec<Delivery> {
    let deadline = Instant::now() + DEADLINE;
    let mut ready = Vec::new();
    while ready.len() < count && Instant::now() < deadline {
        match consumer.ready() {
            Some(delivery) => ready.push(delivery),
            None => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    ready
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar: scripts/services up pulsar"]
async fn messages_already_received_come_out_of_ready_in_order_and_once() {
    const COUNT: u32 = 20;
    let broker = support::broker_json().await;
    let topic = unique_topic("ready");
    let mut consumer = broker
        .subscribe(SubscriptionOptions::new(&topic, "s").kind(SubscriptionKind::KeyShared))
        .await
        .expect("subscribed");
    for n in 1..=COUNT {
        broker
            .publish(&ping(&topic, n, Some(&format!("k{n}"))))
            .await
            .expect("published");
    }

    let first = receive(&mut *consumer).await;
    assert_eq!(n_of(&first), 1);
    let rest = drain_ready(&mut *consumer, COUNT as usize - 1).await;
    let numbers: Vec<u32> = rest.iter().map(n_of).collect();
    assert_eq!(
        numbers,
        (2..=COUNT).collect::<Vec<_>>(),
        "the rest, through ready, in publish order"
    );
    let ids: BTreeSet<String> = std::iter::once(&first)
        .chain(&rest)
        .map(|d| d.message.id().to_string())
        .collect();
    assert_eq!(ids.len(), COUNT as usize, "each message once");
    assert!(consumer.ready().is_none(), "nothing more at hand");
    for delivery in std::iter::once(&first).chain(&rest) {
        consumer.ack(delivery).await.expect("acked");
    }
    expect_quiet(&mut *consumer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar: scripts/services up pulsar"]
async fn ready_does_not_hand_out_a_key_held_back_behind_a_nack() {
    let broker = support::broker_json().await;
    let topic = unique_topic("ready-held");
    let retry = RetryPolicy {
        max_deliveries: 5,
        initial_backoff: Duration::from_secs(2),
        max_backoff: Duration::from_secs(2),
        multiplier: 1,
    };
    let mut consumer = broker
        .subscribe(
            SubscriptionOptions::new(&topic, "s")
                .kind(SubscriptionKind::KeyShared)
                .retry(retry),
        )
        .await
        .expect("subscribed");
    // a's are odd, b's even.
    for (n, key) in [(1, "a"), (3, "a"), (2, "b"), (5, "a"), (4, "b")] {
        broker
            .publish(&ping(&topic, n, Some(key)))
            .await
            .expect("published");
    }
    let first = receive(&mut *consumer).await;
    assert_eq!(n_of(&first), 1);
    consumer.nack(&first).await.expect("nacked");

    // While 1 waits out its backoff, ready hands out b's messages, each once the one before
    // it is settled, and none of a's.
    for expected in [2, 4] {
        let at_hand = drain_ready(&mut *consumer, 1).await;
        assert_eq!(
            at_hand.iter().map(n_of).collect::<Vec<_>>(),
            vec![expected],
            "b in order; a held back behind 1"
        );
        assert!(consumer.ready().is_none(), "nothing else is at hand");
        consumer.ack(&at_hand[0]).await.expect("acked");
    }
    assert!(
        consumer.ready().is_none(),
        "a's later messages wait behind 1"
    );

    // Then a's, in order, the nacked one first, each once the one before it is settled.
    let again = receive(&mut *consumer).await;
    assert_eq!(
        (n_of(&again), again.attempt),
        (1, 2),
        "the nacked one, again"
    );
    consumer.ack(&again).await.expect("acked");
    for expected in [3, 5] {
        let at_hand = drain_ready(&mut *consumer, 1).await;
        assert_eq!(at_hand.iter().map(n_of).collect::<Vec<_>>(), vec![expected]);
        consumer.ack(&at_hand[0]).await.expect("acked");
    }
    expect_quiet(&mut *consumer).await;
}
