//! Events per second through the outbox relay and this adapter, against a raw pulsar-rs
//! producer loop sending the same payloads, on the same broker in the same run.
//!
//! Three paths, same payloads, same number of sends in flight (`BENCH_IN_FLIGHT`, default 16:
//! the relay's default `max_in_flight`; every message has its own key, so the relay can overlap
//! them), same batching (`BENCH_BATCHING`, default `on`: the adapter's `Batching::on()`, given
//! to the raw producer too in pulsar-rs's terms; `off` for one entry per message;
//! `BENCH_BATCH_DELAY_MS`, default 1, its longest delay), each message counted only once the
//! broker's receipt is in:
//!
//! - **raw producer**: a pulsar-rs producer sending payloads encoded beforehand (the encoding
//!   cost is printed apart);
//! - **adapter alone**: `PulsarBroker::publish` (encodes to Avro, sends, awaits the receipt),
//!   in rounds of `BENCH_CLAIM`, without an outbox;
//! - **relay + adapter**: the outbox relay on a memory store, claiming `BENCH_CLAIM` entries
//!   per round (default 100, the relay's default), encoding, sending, marking as published.
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

use futures_util::{stream, StreamExt};
use pulsar::{Pulsar, TokioExecutor};
use seedwork::application::Bus;
use seedwork::memory::MemoryStore;
use seedwork::messaging::{
    IntegrationEvent, IntegrationMessage, Message, MessageKind, OutboxRelay, OutboxStore, Publisher,
};
use seedwork_pulsar::{AvroType, Batching, PulsarBroker, Record, TopicSchema};
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

/// The settings all paths run with.
#[derive(Debug, Clone, Copy)]
struct Setup {
    window: usize,
    claim: usize,
    batching: bool,
    delay: Duration,
}

impl Setup {
    /// What the adapter is given.
    fn batching(&self) -> Batching {
        if self.batching {
            Batching::on().max_delay(self.delay)
        } else {
            Batching::off()
        }
    }

    /// The same batching for the raw producer, in pulsar-rs's terms (the numbers of
    /// `Batching::on()`: 1 000 messages, 128 KiB, and the delay).
    fn raw_options(&self, schema: &TopicSchema) -> pulsar::ProducerOptions {
        let mut options = pulsar::ProducerOptions {
            schema: schema.pulsar_schema(),
            ..Default::default()
        };
        if self.batching {
            options.batch_size = Some(1000);
            options.batch_byte_size = Some(128 * 1024);
            options.batch_timeout = Some(self.delay);
        }
        options
    }
}

async fn raw_loop(
    url: &str,
    topic: &str,
    schema: &TopicSchema,
    messages: &[Message],
    setup: Setup,
) -> (Duration, Duration) {
    let window = setup.window;
    let client = Pulsar::builder(url, TokioExecutor)
        .build()
        .await
        .expect("Pulsar is reachable");
    let mut producer = client
        .producer()
        .with_topic(topic)
        .with_options(setup.raw_options(schema))
        .build()
        .await
        .expect("a producer");
    let encoding = Instant::now();
    let encoded: Vec<_> = messages
        .iter()
        .map(|m| schema.to_pulsar(m).expect("encodes"))
        .collect();
    let encoding = encoding.elapsed();
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
    (started.elapsed(), encoding)
}

async fn adapter_loop(url: &str, topic: &str, messages: &[Message], setup: Setup) -> Duration {
    let schema = TopicSchema::avro_record(topic, &wire_record()).expect("schema");
    let broker = PulsarBroker::builder(url)
        .schema(schema)
        .batching(setup.batching())
        .connect()
        .await
        .expect("Pulsar is reachable");
    let to_topic = |m: &Message| {
        let mut m = m.clone();
        m.topic = topic.to_string();
        m
    };
    let messages: Vec<Message> = messages.iter().map(to_topic).collect();
    broker.publish(&messages[0]).await.expect("warm-up");
    let started = Instant::now();
    for round in messages.chunks(setup.claim) {
        let results: Vec<_> = stream::iter(round.iter().map(|m| broker.publish(m)))
            .buffer_unordered(setup.window)
            .collect()
            .await;
        for result in results {
            result.expect("published");
        }
    }
    started.elapsed()
}

async fn relay_loop(url: &str, topic: &str, messages: &[Message], setup: Setup) -> Duration {
    let schema = TopicSchema::avro_record(topic, &wire_record()).expect("schema");
    let broker = PulsarBroker::builder(url)
        .schema(schema)
        .batching(setup.batching())
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
    let relay = OutboxRelay::new(Arc::new(store.clone()), Arc::new(broker))
        .max_in_flight(setup.window)
        .batch_size(setup.claim);
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
    let setup = Setup {
        window: env_number("BENCH_IN_FLIGHT", 16).max(1),
        claim: env_number("BENCH_CLAIM", 100).max(1),
        batching: std::env::var("BENCH_BATCHING").map_or(true, |v| v != "off"),
        delay: Duration::from_millis(env_number("BENCH_BATCH_DELAY_MS", 1) as u64),
    };
    println!(
        "{count} messages per run, {rounds} runs each, {} in flight, {} per round, batching {}, \
         broker {url}",
        setup.window,
        setup.claim,
        if setup.batching {
            format!("on ({:?})", setup.delay)
        } else {
            "off".into()
        }
    );
    let mut raw_rates = Vec::new();
    let mut adapter_rates = Vec::new();
    let mut relay_rates = Vec::new();
    // Each run's rates as shares of its raw producer's: the machine's speed moves between
    // runs, and a share compares paths measured in the same moments.
    let mut adapter_shares = Vec::new();
    let mut relay_shares = Vec::new();
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
        let adapter_topic = format!("bench-adapter-{suffix}");
        // The machine's speed drifts within a run: each run starts with another path, so
        // that no path is always the one measured first.
        let (mut raw, mut encoding, mut adapter, mut relay) = Default::default();
        for path in (0..3).map(|i| (i + round) % 3) {
            match path {
                0 => {
                    (raw, encoding) =
                        raw_loop(&url, &raw_topic, &raw_schema, &messages, setup).await
                }
                1 => adapter = adapter_loop(&url, &adapter_topic, &messages, setup).await,
                _ => relay = relay_loop(&url, &relay_topic, &messages, setup).await,
            }
        }
        let raw_rate = count as f64 / raw.as_secs_f64();
        let adapter_rate = count as f64 / adapter.as_secs_f64();
        let relay_rate = count as f64 / relay.as_secs_f64();
        println!(
            "run {round}: raw producer {raw_rate:>8.0} msg/s   adapter alone {adapter_rate:>8.0} msg/s   \
             relay + adapter {relay_rate:>8.0} msg/s   ({:.0} % and {:.0} % of raw; encoding \
             beforehand took {:.1} µs/msg)",
            100.0 * adapter_rate / raw_rate,
            100.0 * relay_rate / raw_rate,
            encoding.as_secs_f64() * 1e6 / count as f64
        );
        raw_rates.push(raw_rate);
        adapter_rates.push(adapter_rate);
        relay_rates.push(relay_rate);
        adapter_shares.push(adapter_rate / raw_rate);
        relay_shares.push(relay_rate / raw_rate);
    }
    let median = |rates: &mut Vec<f64>| {
        rates.sort_by(|a, b| a.total_cmp(b));
        rates[rates.len() / 2]
    };
    let (raw, adapter, relay) = (
        median(&mut raw_rates),
        median(&mut adapter_rates),
        median(&mut relay_rates),
    );
    println!(
        "median: raw producer {raw:.0} msg/s, adapter alone {adapter:.0} msg/s, relay + adapter \
         {relay:.0} msg/s; median of the runs' shares of raw: adapter alone {:.0} %, relay + \
         adapter {:.0} %",
        100.0 * median(&mut adapter_shares),
        100.0 * median(&mut relay_shares)
    );
}
