//! A non-durable subscription on the real broker: a cursor that exists while a consumer is
//! attached and goes with it, so a live feed leaves no backlog behind.
//!
//! Needs a broker: `scripts/services up pulsar`.

use std::time::Duration;

use seedwork::messaging::{Publisher, Subscriber, SubscriptionOptions};
use seedwork::testing::contract::broker::{
    expect_delivery, expect_quiet, n_of, ping, unique_topic,
};

mod support;

/// The topic's subscriptions as the broker's stats list them: name → whether durable.
async fn subscriptions(topic: &str) -> Vec<(String, bool)> {
    let url = format!(
        "{}/admin/v2/persistent/public/default/{topic}/stats",
        support::admin_url()
    );
    let stats: serde_json::Value =
        serde_json::from_str(&support::admin_get(&url).await).expect("JSON stats");
    let mut found: Vec<(String, bool)> = stats["subscriptions"]
        .as_object()
        .unwrap_or_else(|| panic!("no subscriptions in {stats}"))
        .iter()
        .map(|(name, sub)| {
            let durable = sub["isDurable"]
                .as_bool()
                .unwrap_or_else(|| panic!("no isDurable for `{name}`: {sub}"));
            (name.clone(), durable)
        })
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar: scripts/services up pulsar"]
async fn a_non_durable_subscription_goes_with_its_consumer() {
    let broker = support::broker_json().await;
    let topic = unique_topic("non-durable");
    let live = || SubscriptionOptions::new(&topic, "live").durable(false);
    // A durable subscription keeps the topic and its stats while `live` comes and goes.
    let mut kept = broker
        .subscribe(SubscriptionOptions::new(&topic, "kept"))
        .await
        .expect("subscribed");
    let mut consumer = broker.subscribe(live()).await.expect("subscribed");
    assert_eq!(
        subscriptions(&topic).await,
        vec![("kept".to_string(), true), ("live".to_string(), false)]
    );

    broker.publish(&ping(&topic, 1, None)).await.expect("sent");
    let delivery = expect_delivery(&mut *consumer).await;
    assert_eq!(n_of(&delivery), 1);
    consumer.ack(&delivery).await.expect("acked");
    drop(consumer);

    // The client closes the consumer in the background: wait, bounded, for the broker to drop
    // the cursor.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let now = subscriptions(&topic).await;
        if now == vec![("kept".to_string(), true)] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the non-durable subscription is still there 15 s after its consumer went: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Published while nobody is attached: kept for `kept`, not for a new `live`.
    broker.publish(&ping(&topic, 2, None)).await.expect("sent");
    let mut again = broker.subscribe(live()).await.expect("subscribed");
    expect_quiet(&mut *again).await;
    broker.publish(&ping(&topic, 3, None)).await.expect("sent");
    let delivery = expect_delivery(&mut *again).await;
    assert_eq!(
        n_of(&delivery),
        3,
        "only what was published after it came back"
    );
    again.ack(&delivery).await.expect("acked");
    for n in 1..=3 {
        let delivery = expect_delivery(&mut *kept).await;
        assert_eq!(n_of(&delivery), n, "the durable subscription has them all");
        kept.ack(&delivery).await.expect("acked");
    }
}
