//! Events per second through the outbox relay and this adapter, against a raw pulsar-rs
//! producer loop sending the same payloads, on the same broker in the same run.
//!
//! Both sides keep the same number of sends in flight (`BENCH_IN_FLIGHT`, default 16: the
//! relay's default `max_in_flight`; every message has its own key, so the relay can overlap
//! them) and count a message only once the broker's receipt is in. The raw loop sends payloads
//! encoded beforehand; the relay path claims from the outbox, encodes to Avro, sends and marks
//! as published.
//!
//! Run against a local broker (`scripts/services up pulsar`):
//!
//! ```text
//! cargo bench -p seedwork-pulsar --bench relay_throughput
//! ```
//!
//! `SEEDWORK_PULSAR_URL` picks another broker; `BENCH_MESSAGES` (default 5000) and
//! `BENCH_ROUNDS` (default 3) size the run; `BENCH_IN_FLIGHT=1` compares one-at-a-time sends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pulsar::{Pulsar, TokioExecutor};
use seedwork::application::Bus;
use seedwork::memory::MemoryStore;
use seedwork::messaging::{
    IntegrationEvent, IntegrationMessage, Message, MessageKind, OutboxRelay, OutboxStore,
};
use seedwork_pulsar::{AvroType, PulsarBroker, Record, TopicSchema};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReservaCreada {
    id_reserva: String,
    id_cliente: String,
    estado: String,
    fecha_creacion: i64,
}

impl IntegrationMessage for ReservaCreada {
    const TOPIC: &'static str = "bench";
    const TYPE: &'static str = "EventoReservaCreada";
    const VERSION: &'static str = "v1";
    const KIND: MessageKind = MessageKind::Event;
    fn key(&self) -> Option<String> {
        Some(self.id_reserva.clone())
    }
}
impl IntegrationEvent for ReservaCreada {}

fn wire_record() -> Record {
    let payload = Record::new("ReservaCreadaPayload")
        .field("id_reserva", AvroType::String)
        .field("id_cliente", AvroType::String)
        .field("estado", AvroType::String)
        .field("fecha_creacion", AvroType::Long);
    Record::new("EventoReservaCreada").field("data", AvroType::Record(payload))
}

fn event(n: usize) -> ReservaCreada {
    ReservaCreada {
        id_reserva: format!("{:08}-0000-4000-8000-{n:012}", n % 100_000_000),
        id_cliente: "anonimo".into(),
        estado: "Pendiente".into(),
        fecha_creacion: 1_756_900_800_000 + n as i64,
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn raw_loop(
    url: &str,
    topic: &str,
    schema: &TopicSchema,
    messages: &[Message],
    window: usize,
) -> Duration {
    let client = Pulsar::builder(url, TokioExecutor)
        .build()
        .await
        .expect("Pulsar is reachable");
    let mut producer = client
        .producer()
        .with_topic(topic)
        .with_options(pulsar::ProducerOptions {
            schema: schema.pulsar_schema(),
            ..Default::default()
        })
        .build()
        .await
        .expect("a producer");
    let encoded: Vec<_> = messages
        .iter()
        .map(|m| schema.to_pulsar(m).expect("encodes"))
        .collect();
    // Warm the connection up outside the timing.
    producer
        .send_non_blocking(encoded[0].clone())
        .await
        .expect("sent")
        .await
        .expect("receipt");
    let started = Instant::now();
    let mut in_flight = std::collections::VecDeque::with_capacity(window);
    for message in encoded {
        if in_flight.len() == window {
            let oldest: pulsar::producer::SendFuture = in_flight.pop_front().expect("non-empty");
            oldest.await.expect("receipt");
        }
        in_flight.push_back(producer.send_non_blocking(message).await.expect("sent"));
    }
    for receipt in in_flight {
        receipt.await.expect("receipt");
    }
    started.elapsed()
}

async fn relay_loop(url: &str, topic: &str, messages: &[Message], window: usize) -> Duration {
    let schema = TopicSchema::avro_record(topic, &wire_record()).expect("schema");
    let broker = PulsarBroker::builder(url)
        .schema(schema)
        .connect()
        .await
        .expect("Pulsar is reachable");
    let store = MemoryStore::new();
    let bus = Bus::builder()
        .store(Arc::new(store.clone()))
        .build()
        .expect("a bus");
    // Warm-up message, then the measured ones, committed to the outbox before timing.
    let mut uow = bus.unit_of_work().await.expect("uow");
    uow.enqueue(&event(usize::MAX / 2)).expect("enqueued");
    uow.commit().await.expect("committed");
    let relay = OutboxRelay::new(Arc::new(store.clone()), Arc::new(broker)).max_in_flight(window);
    relay.run_once().await.expect("warm-up round");
    let mut uow = bus.unit_of_work().await.expect("uow");
    for message in messages {
        let payload: ReservaCreada = message.decode().expect("decodes").data;
        uow.enqueue(&payload).expect("enqueued");
    }
    uow.commit().await.expect("committed");
    let started = Instant::now();
    loop {
        let round = relay.run_once().await.expect("a relay round");
        if round.published == 0 && store.pending().await.expect("pending") == 0 {
            break;
        }
        assert_eq!(round.released, 0, "nothing fails on a healthy broker");
    }
    started.elapsed()
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run only then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let url =
        std::env::var("SEEDWORK_PULSAR_URL").unwrap_or_else(|_| "pulsar://127.0.0.1:6650".into());
    let count = env_number("BENCH_MESSAGES", 5000);
    let rounds = env_number("BENCH_ROUNDS", 3);
    let window = env_number("BENCH_IN_FLIGHT", 16).max(1);
    println!("{count} messages per run, {rounds} runs each, {window} in flight, broker {url}");
    let mut raw_rates = Vec::new();
    let mut relay_rates = Vec::new();
    for round in 0..rounds {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let raw_topic = format!("bench-raw-{suffix}");
        let relay_topic = format!("bench-relay-{suffix}");
        let messages: Vec<Message> = (0..count)
            .map(|n| {
                let mut m = Message::encode(&event(n), "bench").expect("encodes");
                m.topic = relay_topic.clone();
                m
            })
            .collect();
        let raw_schema = TopicSchema::avro_record(&raw_topic, &wire_record()).expect("schema");
        let raw = raw_loop(&url, &raw_topic, &raw_schema, &messages, window).await;
        let relay = relay_loop(&url, &relay_topic, &messages, window).await;
        let raw_rate = count as f64 / raw.as_secs_f64();
        let relay_rate = count as f64 / relay.as_secs_f64();
        println!(
            "run {round}: raw producer {raw_rate:>8.0} msg/s   relay + adapter {relay_rate:>8.0} msg/s   ({:.0} %)",
            100.0 * relay_rate / raw_rate
        );
        raw_rates.push(raw_rate);
        relay_rates.push(relay_rate);
    }
    let median = |rates: &mut Vec<f64>| {
        rates.sort_by(|a, b| a.total_cmp(b));
        rates[rates.len() / 2]
    };
    let (raw, relay) = (median(&mut raw_rates), median(&mut relay_rates));
    println!(
        "median: raw producer {raw:.0} msg/s, relay + adapter {relay:.0} msg/s: {:.0} % of raw",
        100.0 * relay / raw
    );
}
