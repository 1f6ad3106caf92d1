//! Shared set-up of the Pulsar tests.
#![allow(dead_code)]

use std::time::Duration;

use seedwork_pulsar::pulsar::{self, Pulsar, TokioExecutor};
use seedwork_pulsar::{AvroType, PulsarBroker, Record, TopicSchema};

/// The broker under test: `SEEDWORK_PULSAR_URL` or the local standalone broker.
pub fn url() -> String {
    std::env::var("SEEDWORK_PULSAR_URL").unwrap_or_else(|_| "pulsar://127.0.0.1:6650".into())
}

/// The admin REST endpoint: `SEEDWORK_PULSAR_ADMIN` or the local one.
pub fn admin_url() -> String {
    std::env::var("SEEDWORK_PULSAR_ADMIN").unwrap_or_else(|_| "http://127.0.0.1:8080".into())
}

/// A broker where every topic travels as schemaless JSON.
pub async fn broker_json() -> PulsarBroker {
    PulsarBroker::connect(url())
        .await
        .expect("Pulsar is reachable (scripts/services up pulsar)")
}

/// The wire record of the contract suite's `Ping` payload, Python style.
pub fn ping_record() -> Record {
    let ping = Record::new("ContractPingPayload")
        .field("n", AvroType::Long)
        .field("text", AvroType::String);
    Record::new("ContractPing").field("data", AvroType::Record(ping))
}

/// A broker where every topic is Avro with the `Ping` schema.
pub async fn broker_avro() -> PulsarBroker {
    let fallback = TopicSchema::avro_record("any", &ping_record()).expect("a valid schema");
    PulsarBroker::builder(url())
        .fallback(fallback)
        .connect()
        .await
        .expect("Pulsar is reachable (scripts/services up pulsar)")
}

/// A plain pulsar-rs client, to look at what the broker holds. Its retries are bounded (the
/// client's default is to retry a lookup without end), so a broker that does not serve fails
/// the test instead of hanging it.
pub async fn raw_client() -> Pulsar<TokioExecutor> {
    Pulsar::builder(url(), TokioExecutor)
        .with_operation_retry_options(pulsar::OperationRetryOptions {
            operation_timeout: Duration::from_secs(10),
            retry_delay: Duration::from_millis(500),
            max_retries: Some(10),
        })
        .build()
        .await
        .expect("Pulsar is reachable (scripts/services up pulsar)")
}

/// A consumer of `topic` on the subscription `inspect` that reads raw bytes, to look at what
/// the broker stored (a seedwork consumer would decode, or dead-letter, it).
pub async fn raw_consumer(
    client: &Pulsar<TokioExecutor>,
    topic: &str,
) -> pulsar::Consumer<Vec<u8>, TokioExecutor> {
    client
        .consumer()
        .with_topic(topic)
        .with_subscription("inspect")
        .build::<Vec<u8>>()
        .await
        .expect("a raw consumer")
}

/// A minimal HTTP GET over a TCP socket (the admin API is plain HTTP on loopback); the body of
/// a 200 answer.
pub async fn admin_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_at(rest.find('/').expect("a path"));
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(host)
            .await
            .expect("the admin API is reachable");
        let request =
            format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("sent");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        response
    };
    let response = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .expect("the admin API answers in time");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{head}"
    );
    body.to_string()
}
