//! Failure handling against a real Pulsar broker: poison messages, unreachable brokers.

mod support;

use std::time::Duration;

use seedwork::messaging::{dead_letter, Message, Publisher, Subscriber, SubscriptionOptions};
use seedwork::testing::contract::broker::{expect_delivery, n_of, ping, unique_topic};
use seedwork::Error;
use seedwork_pulsar::pulsar::{self, Pulsar, TokioExecutor};
use seedwork_pulsar::{PulsarBroker, TopicSchema};

async fn send_raw(client: &Pulsar<TokioExecutor>, topic: &str, payload: &[u8]) {
    let mut producer = client
        .producer()
        .with_topic(topic)
        .build()
        .await
        .expect("a raw producer");
    producer
        .send_non_blocking(pulsar::producer::Message {
            payload: payload.to_vec(),
            ..Default::default()
        })
        .await
        .expect("sent")
        .await
        .expect("receipt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar: scripts/services up pulsar"]
async fn a_poison_message_goes_to_the_dead_letter_topic_and_the_consumer_goes_on() {
    use futures_util::StreamExt;
    let broker = support::broker_avro().await;
    let client = support::raw_client().await;
    let topic = unique_topic("poison");
    let options = SubscriptionOptions::new(&topic, "s");
    let dead_letters = options.effective_dead_letter_topic();
    let mut graveyard = support::raw_consumer(&client, &dead_letters).await;
    let mut consumer = broker.subscribe(options).await.expect("subscribed");

    broker
        .publish(&ping(&topic, 1, Some("k")))
        .await
        .expect("published");
    send_raw(&client, &topic, b"\xde\xad\xbe\xef not a datum").await;
    broker
        .publish(&ping(&topic, 2, Some("k")))
        .await
        .expect("published");

    // The consumer hands out the good messages and never the poison.
    for expected in [1, 2] {
        let delivery = expect_delivery(&mut *consumer).await;
        assert_eq!(n_of(&delivery), expected);
        consumer.ack(&delivery).await.expect("acked");
    }
    let dead = tokio::time::timeout(Duration::from_secs(10), graveyard.next())
        .await
        .expect("a dead letter arrives")
        .expect("the stream is open")
        .expect("a message");
    assert_eq!(dead.payload.data, b"\xde\xad\xbe\xef not a datum");
    let properties: std::collections::HashMap<_, _> = dead
        .payload
        .metadata
        .properties
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_str()))
        .collect();
    assert!(
        properties
            .get(dead_letter::REASON)
            .is_some_and(|r| r.starts_with("undecodable")),
        "{properties:?}"
    );
    assert_eq!(
        properties.get(dead_letter::ORIGINAL_TOPIC),
        Some(&topic.as_str())
    );
    assert_eq!(properties.get(dead_letter::SUBSCRIPTION), Some(&"s"));
    assert_eq!(properties.get(dead_letter::DELIVERIES), Some(&"1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar: scripts/services up pulsar"]
async fn the_registry_serves_the_schema_the_producer_registered() {
    let broker = support::broker_avro().await;
    let topic = unique_topic("registry");
    broker
        .publish(&ping(&topic, 1, None))
        .await
        .expect("published");
    let url = format!(
        "{}/admin/v2/schemas/public/default/{topic}/schema",
        support::admin_url()
    );
    let body = support::admin_get(&url).await;
    let info: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(info["type"], "AVRO", "{info}");
    let registered: serde_json::Value =
        serde_json::from_str(info["data"].as_str().expect("schema text")).expect("JSON schema");
    assert_eq!(registered, support::ping_record().to_json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_unavailable() {
    // Nothing listens on port 1 of the loopback interface.
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        PulsarBroker::builder("pulsar://127.0.0.1:1").connect(),
    )
    .await
    .expect("connect gives up");
    match outcome {
        Err(error @ Error::Unavailable(_)) => {
            assert!(error.is_transient());
            assert_eq!(error.kind(), seedwork::ErrorKind::Unavailable);
        }
        Err(other) => panic!("expected Error::Unavailable, got {other}"),
        Ok(_) => panic!("connected to nothing"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar: scripts/services up pulsar"]
async fn a_payload_that_does_not_fit_the_schema_is_a_codec_error_before_sending() {
    let broker = PulsarBroker::builder(support::url())
        .schema(TopicSchema::avro_record("strict-topic", &support::ping_record()).expect("schema"))
        .connect()
        .await
        .expect("connected");
    let mut message: Message = ping("strict-topic", 1, None);
    message.envelope.data = serde_json::json!({"n": "one", "text": "x"});
    match broker.publish(&message).await {
        Err(Error::Codec { .. }) => {}
        other => panic!("expected a codec error, got {other:?}"),
    }
}

/// How many messages the broker has dispatched to the consumers of `subscription` so far.
async fn dispatched(topic: &str, subscription: &str) -> u64 {
    let url = format!(
        "{}/admin/v2/persistent/public/default/{topic}/stats",
        support::admin_url()
    );
    let stats: serde_json::Value =
        serde_json::from_str(&support::admin_get(&url).await).expect("JSON stats");
    stats["subscriptions"][subscription]["msgOutCounter"]
        .as_u64()
        .unwrap_or_else(|| panic!("no msgOutCounter for `{subscription}`: {stats}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar: scripts/services up pulsar"]
async fn a_key_stuck_in_backoff_does_not_make_the_consumer_buffer_the_backlog() {
    const BOUND: usize = 10;
    const BEHIND: u32 = 200;
    let broker = PulsarBroker::builder(support::url())
        .max_held_back(BOUND)
        .connect()
        .await
        .expect("Pulsar is reachable (scripts/services up pulsar)");
    let topic = unique_topic("held-back");
    let long_backoff = seedwork::messaging::RetryPolicy {
        max_deliveries: 5,
        initial_backoff: Duration::from_secs(60),
        max_backoff: Duration::from_secs(60),
        multiplier: 1,
    };
    let mut consumer = broker
        .subscribe(SubscriptionOptions::new(&topic, "s").retry(long_backoff))
        .await
        .expect("subscribed");
    broker
        .publish(&ping(&topic, 0, Some("stuck")))
        .await
        .expect("published");
    let first = expect_delivery(&mut *consumer).await;
    assert_eq!(n_of(&first), 0);
    consumer.nack(&first).await.expect("nacked");
    for n in 1..=BEHIND {
        broker
            .publish(&ping(&topic, n, Some("stuck")))
            .await
            .expect("published");
    }
    // Every later message waits behind the first one's minute of backoff: nothing can be
    // handed out, and the consumer must stop reading at its bound.
    let outcome = tokio::time::timeout(Duration::from_secs(3), consumer.receive()).await;
    assert!(outcome.is_err(), "a message of the stuck key overtook it");
    let out = dispatched(&topic, "s").await;
    let ceiling = (3 * BOUND + 1) as u64;
    assert!(
        out <= ceiling,
        "the broker dispatched {out} of {} messages to a consumer bounded at {BOUND} held back \
         (ceiling {ceiling}: held back, the client's receiver queue, the nacked one)",
        BEHIND + 1
    );
}
