//! Schema evolution against a real Pulsar registry: the local check
//! ([`seedwork_pulsar::compatibility`]) and the broker agree on what may follow a topic's
//! schema under the strategy set on its namespace; a compatible change is registered as a new
//! version and a breaking one is refused, as a typed error that is not retried.

mod support;

use seedwork::messaging::Publisher;
use seedwork::testing::contract::broker::{ping, unique_topic};
use seedwork_pulsar::compatibility::{check, Compatibility};
use seedwork_pulsar::{PulsarBroker, TopicSchema};

/// The contract suite's `Ping` as an Avro wire record.
const V1: &str = r#"{"type":"record","name":"ContractPing","fields":[{"name":"data","type":
    {"type":"record","name":"ContractPingPayload","fields":[
        {"name":"n","type":"long"},{"name":"text","type":"string"}]}}]}"#;

/// V1 with an optional field that has a `null` default: compatible both ways.
const V2: &str = r#"{"type":"record","name":"ContractPing","fields":[{"name":"data","type":
    {"type":"record","name":"ContractPingPayload","fields":[
        {"name":"n","type":"long"},{"name":"text","type":"string"},
        {"name":"nota","type":["null","string"],"default":null}]}}]}"#;

/// V1 with `n` widened to a double: a v1 reader (`long`) cannot read what it writes, so it
/// breaks `FORWARD` and `FULL` (a `Ping` still encodes under it, so the broker is the one to
/// refuse it).
const BREAKING: &str = r#"{"type":"record","name":"ContractPing","fields":[{"name":"data","type":
    {"type":"record","name":"ContractPingPayload","fields":[
        {"name":"n","type":"double"},{"name":"text","type":"string"}]}}]}"#;

/// The strategy of the namespace the tests' topics live in, as the admin API reports it. An
/// unset policy (`UNDEFINED`) means the broker's `schemaCompatibilityStrategy`, `FULL` unless
/// configured otherwise (`scripts/services` sets `FULL` on the namespace explicitly).
async fn namespace_strategy() -> Compatibility {
    let url = format!(
        "{}/admin/v2/namespaces/public/default/schemaCompatibilityStrategy",
        support::admin_url()
    );
    let body = support::admin_get(&url).await;
    match body.trim().trim_matches('"') {
        "UNDEFINED" => Compatibility::Full,
        name => name
            .parse()
            .unwrap_or_else(|e| panic!("the namespace's strategy `{name}`: {e}")),
    }
}

async fn broker_with(topic: &str, schema: &str) -> PulsarBroker {
    PulsarBroker::builder(support::url())
        .schema(TopicSchema::avro(topic, schema).expect("a valid schema"))
        .connect()
        .await
        .expect("Pulsar is reachable (scripts/services up pulsar)")
}

/// The version numbers of `topic`'s registered schemas and the latest one's text.
async fn latest_schema(topic: &str) -> (u64, String) {
    let url = format!(
        "{}/admin/v2/schemas/public/default/{topic}/schema",
        support::admin_url()
    );
    let info: serde_json::Value =
        serde_json::from_str(&support::admin_get(&url).await).expect("JSON");
    (
        info["version"].as_u64().expect("a version"),
        info["data"].as_str().expect("schema text").to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar: scripts/services up pulsar"]
async fn the_registry_takes_a_compatible_change_and_refuses_a_breaking_one() {
    let strategy = namespace_strategy().await;
    // The local check says what the broker is about to say.
    check(V1, V2, strategy).expect("v2 may follow v1");
    let refused = check(V1, BREAKING, strategy).expect_err("the breaking change is caught");
    assert!(
        refused.to_string().contains(strategy.as_pulsar_str()),
        "{refused}"
    );

    let topic = unique_topic("evolution");
    broker_with(&topic, V1)
        .await
        .publish(&ping(&topic, 1, None))
        .await
        .expect("v1 registers and publishes");
    broker_with(&topic, V2)
        .await
        .publish(&ping(&topic, 2, None))
        .await
        .expect("v2 registers as the next version and publishes");
    let (version, text) = latest_schema(&topic).await;
    assert_eq!(version, 1, "v1 is version 0, v2 version 1: {text}");
    assert!(text.contains("nota"), "{text}");

    let error = broker_with(&topic, BREAKING)
        .await
        .publish(&ping(&topic, 3, None))
        .await
        .expect_err("the registry refuses the breaking schema");
    assert!(
        matches!(error, seedwork::Error::Broker(_)),
        "a refusal, not an outage: {error:?}"
    );
    assert!(!error.is_transient(), "not retried: {error:?}");
    assert!(
        format!("{error:?}").contains("IncompatibleSchema"),
        "the registry's reason: {error:?}"
    );
    let (version, _) = latest_schema(&topic).await;
    assert_eq!(version, 1, "nothing was registered");
}
