//! The tutorial's Python services and our Pulsar adapter on one real broker.
//!
//! The Python side is `tests/python/interop.py`: the official `pulsar-client` from PyPI with the
//! tutorial's record classes (`tests/python/alpes_records.py`). Our side declares no schema:
//! every topic's schema is derived from the Rust message types (`schema/v1.rs`). Python reads
//! our events with `AvroSchema(EventoReservaCreada)` whichever side registered the topic's
//! schema first, decodes a reservation's whole life (a union of four types on one topic) the
//! original UI's way (schema from the registry, `fastavro.schemaless_reader`), and sends a
//! `ComandoCrearReserva` our consumer decodes. Every test uses topics of its own.
//!
//! Needs `scripts/services up pulsar` and `pip install -r tests/python/requirements.txt`;
//! `SEEDWORK_PYTHON` (default `python3`), `SEEDWORK_PULSAR_URL` and `SEEDWORK_PULSAR_ADMIN`
//! point elsewhere.
#![cfg(feature = "pulsar")]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use alpespartners::vuelos::infraestructura::schema::v1::{
    Aeropuerto, ComandoCrearReserva, EventoReserva, EventoReservaAprobada, EventoReservaCreada,
    Itinerario, Leg, Odo, Segmento,
};
use alpespartners::vuelos::infraestructura::schema::v2;
use seedwork::messaging::schema::MessageSchema;
use seedwork::messaging::{
    Consumer, Delivery, IntegrationMessage, Message, Publisher, Subscriber, SubscriptionOptions,
    CORRELATION_ID,
};
use seedwork_pulsar::compatibility::{check, Compatibility};
use seedwork_pulsar::{PulsarBroker, TopicSchema};

/// The schema the tutorial's Python `EventoReservaCreada` registers, as quoted in the "wire
/// fact" of the port's reference (`original-system.md`, section seedwork).
const WIRE_FACT: &str = r#"{"type":"record","name":"EventoReservaCreada","fields":[{"name":"data","type":["null",{"type":"record","name":"ReservaCreadaPayload","fields":[{"name":"id_reserva","type":["null","string"]},{"name":"id_cliente","type":["null","string"]},{"name":"estado","type":["null","string"]},{"name":"fecha_creacion","type":["null","long"]}]}]}]}"#;

/// How long a Python process may take to start and subscribe.
const READY: Duration = Duration::from_secs(45);
/// How long a message may take to arrive.
const DELIVERY: Duration = Duration::from_secs(45);

fn pulsar_url() -> String {
    std::env::var("SEEDWORK_PULSAR_URL").unwrap_or_else(|_| "pulsar://127.0.0.1:6650".into())
}

fn pulsar_admin() -> String {
    std::env::var("SEEDWORK_PULSAR_ADMIN").unwrap_or_else(|_| "http://127.0.0.1:8080".into())
}

fn python() -> String {
    std::env::var("SEEDWORK_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn interop_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/interop.py")
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn parse(schema: &str) -> Value {
    serde_json::from_str(schema).expect("a JSON schema")
}

/// `schema` without its fields' defaults: the derived schemas give every nullable field a
/// `null` default, the Python client only a field declared `required_default`; the defaults
/// only matter to a reader missing the field, so the shapes are compared without them.
fn without_defaults(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| key.as_str() != "default")
                .map(|(key, value)| (key.clone(), without_defaults(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_defaults).collect()),
        other => other.clone(),
    }
}

/// The derived schema of the creation event on `topic` (our producers' and consumers').
fn events_schema(topic: &str) -> TopicSchema {
    TopicSchema::derived(topic, &[MessageSchema::of::<EventoReservaCreada>()])
        .expect("the creation event's schema derives")
}

/// The derived schema of the command on `topic`.
fn commands_schema(topic: &str) -> TopicSchema {
    TopicSchema::derived(topic, &[MessageSchema::of::<ComandoCrearReserva>()])
        .expect("the command's schema derives")
}

/// The derived union of a reservation's life on `topic`, from the enum's registrations.
fn lifecycle_schema(topic: &str) -> TopicSchema {
    let types: Vec<MessageSchema> = seedwork::messaging::schema::registered()
        .into_iter()
        .filter(|s| s.topic == EventoReserva::TOPIC)
        .collect();
    assert_eq!(types.len(), 5, "{types:?}");
    TopicSchema::derived(topic, &types).expect("the lifecycle union derives")
}

fn definition(schema: &TopicSchema) -> Value {
    parse(schema.definition().expect("an Avro schema"))
}

// --- The Python side ---------------------------------------------------------------------------

/// One run of `interop.py`; killed when dropped, so a failing test leaves nothing behind.
struct Python {
    what: String,
    child: Child,
    stdout: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Python {
    /// Starts `interop.py SUBCOMMAND --url … ARGS`.
    fn spawn(subcommand: &str, args: &[&str]) -> Python {
        let url = pulsar_url();
        let mut command = Command::new(python());
        command
            .arg(interop_script())
            .arg(subcommand)
            .args(["--url", &url])
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            // No __pycache__ left in the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}); set SEEDWORK_PYTHON to a Python with \
                 `pip install -r tests/python/requirements.txt`",
                python()
            )
        });
        let (lines, stdout) = mpsc::unbounded_channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().expect("stderr");
        let collected = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                collected
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(line);
            }
        });
        Python {
            what: format!("interop.py {subcommand} {}", args.join(" ")),
            child,
            stdout,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    /// The next JSON line on stdout; panics (with stderr) after `timeout` or at the end.
    async fn next_json(&mut self, timeout: Duration) -> Value {
        match tokio::time::timeout(timeout, self.stdout.recv()).await {
            Ok(Some(line)) => serde_json::from_str(&line).unwrap_or_else(|e| {
                panic!(
                    "{}: printed a line that is not JSON ({e}): {line:?}\nstderr:\n{}",
                    self.what,
                    self.stderr()
                )
            }),
            Ok(None) => {
                // Give the stderr reader a moment to collect the traceback.
                let status = self.wait(Duration::from_secs(5)).await;
                panic!(
                    "{}: stdout ended ({status:?}) before the expected line\nstderr:\n{}",
                    self.what,
                    self.stderr()
                )
            }
            Err(_) => panic!(
                "{}: no line within {timeout:?}\nstderr:\n{}",
                self.what,
                self.stderr()
            ),
        }
    }

    /// Waits for `{"ready": true}` (the subscription exists: publishing may start).
    async fn ready(&mut self) {
        let line = self.next_json(READY).await;
        assert_eq!(line["ready"], true, "{}: {line}", self.what);
    }

    async fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the process to exit and asserts it succeeded.
    async fn succeeds(mut self) {
        let status = self.wait(DELIVERY).await;
        assert!(
            status.is_some_and(|s| s.success()),
            "{}: exit status {status:?}\nstderr:\n{}",
            self.what,
            self.stderr()
        );
    }

    /// Runs a one-shot subcommand to completion and returns its stdout lines.
    async fn run(subcommand: &str, args: &[&str]) -> Vec<Value> {
        let mut python = Python::spawn(subcommand, args);
        let status = python.wait(DELIVERY).await;
        let mut lines = Vec::new();
        // The reader thread forwards what is left once the pipe closes.
        while let Ok(Some(line)) =
            tokio::time::timeout(Duration::from_secs(5), python.stdout.recv()).await
        {
            lines.push(
                serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {line:?}", python.what)),
            );
        }
        assert!(
            status.is_some_and(|s| s.success()),
            "{}: exit status {status:?}\nstdout: {lines:?}\nstderr:\n{}",
            python.what,
            python.stderr()
        );
        lines
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- Our side ------------------------------------------------------------------------------------

async fn broker(schema: TopicSchema) -> PulsarBroker {
    PulsarBroker::builder(pulsar_url())
        .schema(schema)
        .connect()
        .await
        .expect("Pulsar is up (scripts/services up pulsar)")
}

async fn events_broker(topic: &str) -> PulsarBroker {
    broker(events_schema(topic)).await
}

fn evento(n: i64) -> EventoReservaCreada {
    EventoReservaCreada {
        id_reserva: uuid::Uuid::new_v4().to_string(),
        id_cliente: format!("cliente-{n}"),
        estado: "Pendiente".into(),
        fecha_creacion: 1_700_000_000_000 + n,
    }
}

/// `payload` as a message of ours on `topic` (not the type's default topic).
fn message_on<M: IntegrationMessage>(topic: &str, payload: &M) -> Message {
    let mut message = Message::encode(payload, "vuelos")
        .expect("encodes")
        .with_property(CORRELATION_ID, format!("corr-{}", uuid::Uuid::new_v4()));
    message.topic = topic.to_string();
    message
}

async fn publish(broker: &PulsarBroker, message: &Message) {
    broker
        .publish(message)
        .await
        .unwrap_or_else(|e| panic!("publishing {} failed: {e}", message.id()));
}

/// What the registry holds as the topic's latest schema.
async fn registry_schema(topic: &str) -> Value {
    let url = format!(
        "{}/admin/v2/schemas/public/default/{topic}/schema",
        pulsar_admin()
    );
    let response = reqwest::get(&url).await.expect("the admin API answers");
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response.json().await.expect("a JSON answer")
}

/// Asserts a line printed by `consume-events` is `sent`, published as `message`.
fn assert_python_saw(line: &Value, sent: &EventoReservaCreada, message: &Message) {
    assert_eq!(line["record"], "EventoReservaCreada", "{line}");
    assert_eq!(
        line["data"],
        json!({
            "id_reserva": sent.id_reserva,
            "id_cliente": sent.id_cliente,
            "estado": sent.estado,
            "fecha_creacion": sent.fecha_creacion,
        }),
        "the Python record's fields are ours"
    );
    let properties = &line["properties"];
    let envelope = &message.envelope;
    assert_eq!(properties["type"], "EventoReservaCreada", "{line}");
    assert_eq!(properties["id"], envelope.id.as_str(), "{line}");
    assert_eq!(properties["time"], envelope.time.to_string(), "{line}");
    assert_eq!(
        properties["ingestion"],
        envelope.ingestion.to_string(),
        "{line}"
    );
    assert_eq!(properties["specversion"], "v1", "{line}");
    assert_eq!(
        properties["datacontenttype"],
        envelope.datacontenttype.as_str(),
        "{line}"
    );
    assert_eq!(properties["service_name"], "vuelos", "{line}");
    assert_eq!(
        properties[CORRELATION_ID],
        message.correlation_id().expect("we set one"),
        "{line}"
    );
    assert_eq!(line["key"], sent.id_reserva.as_str(), "the partition key");
}

/// With our schema registered on `topic` (by us or Python, before), a Python consumer started
/// now reads the events we publish after it subscribed, and not the one before.
async fn python_reads_our_events(topic: &str, broker: &PulsarBroker) {
    let before = evento(0);
    publish(broker, &message_on(topic, &before)).await;

    let subscription = unique("py-notificaciones");
    let mut python = Python::spawn(
        "consume-events",
        &[
            "--topic",
            topic,
            "--subscription",
            &subscription,
            "--count",
            "2",
            "--timeout",
            "60",
        ],
    );
    python.ready().await;

    let sent = [evento(1), evento(2)];
    let messages: Vec<Message> = sent.iter().map(|e| message_on(topic, e)).collect();
    for message in &messages {
        publish(broker, message).await;
    }

    let mut seen = BTreeMap::new();
    for _ in 0..sent.len() {
        let line = python.next_json(DELIVERY).await;
        let id = line["data"]["id_reserva"]
            .as_str()
            .unwrap_or_else(|| panic!("no id_reserva in {line}"))
            .to_string();
        seen.insert(id, line);
    }
    for (event, message) in sent.iter().zip(&messages) {
        let line = seen
            .get(&event.id_reserva)
            .unwrap_or_else(|| panic!("Python did not see {}: {seen:?}", event.id_reserva));
        assert_python_saw(line, event, message);
    }
    assert!(
        !seen.contains_key(&before.id_reserva),
        "a new subscription sees only what follows it"
    );
    python.succeeds().await;
}

// --- The tests -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar and Python pulsar-client: scripts/services up pulsar; pip install -r tests/python/requirements.txt"]
async fn python_consumer_decodes_our_events_when_we_registered_first() {
    let topic = unique("interop-events");
    let broker = events_broker(&topic).await;
    python_reads_our_events(&topic, &broker).await;

    let registered = registry_schema(&topic).await;
    assert_eq!(registered["version"], 0, "only our schema: {registered}");
    assert_eq!(
        parse(registered["data"].as_str().expect("schema data")),
        definition(&events_schema(&topic)),
        "the Python consumer did not replace our schema"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar and Python pulsar-client: scripts/services up pulsar; pip install -r tests/python/requirements.txt"]
async fn python_consumer_decodes_our_events_when_python_registered_first() {
    let topic = unique("interop-events");
    let lines = Python::run("register-schema", &["--topic", &topic]).await;
    assert_eq!(
        lines,
        vec![json!({"registered": true, "record": "EventoReservaCreada"})]
    );
    let python_first = registry_schema(&topic).await;
    assert_eq!(python_first["type"], "AVRO", "{python_first}");
    assert_eq!(
        parse(python_first["data"].as_str().expect("schema data")),
        parse(WIRE_FACT),
        "Python registered the wire fact"
    );

    // Our derived schema differs from Python's (null defaults): the broker's compatibility
    // check must accept it as a new version of the topic's schema.
    let broker = events_broker(&topic).await;
    python_reads_our_events(&topic, &broker).await;

    let latest = registry_schema(&topic).await;
    assert_eq!(latest["type"], "AVRO", "{latest}");
    assert_eq!(latest["version"], 1, "ours is the second version: {latest}");
    assert_eq!(
        parse(latest["data"].as_str().expect("schema data")),
        definition(&events_schema(&topic))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar and Python pulsar-client: scripts/services up pulsar; pip install -r tests/python/requirements.txt"]
async fn the_registry_serves_our_union_and_the_ui_way_decodes_each_type() {
    let topic = unique("interop-ui");
    let union = lifecycle_schema(&topic);
    let expected = definition(&union);
    let broker = broker(union).await;
    let creada = evento(7);
    let aprobada = EventoReservaAprobada {
        id_reserva: creada.id_reserva.clone(),
        fecha_actualizacion: 1_700_000_100_000,
    };
    publish(
        &broker,
        &message_on(&topic, &EventoReserva::Creada(evento(0))),
    )
    .await;

    let registered = registry_schema(&topic).await;
    assert_eq!(registered["type"], "AVRO", "{registered}");
    assert_eq!(
        parse(registered["data"].as_str().expect("schema data")),
        expected,
        "the registry serves our union"
    );

    let admin = pulsar_admin();
    let subscription = unique("aeroalpes-bff");
    let mut ui = Python::spawn(
        "ui-decode",
        &[
            "--topic",
            &topic,
            "--admin",
            &admin,
            "--subscription",
            &subscription,
            "--count",
            "2",
            "--timeout",
            "60",
        ],
    );
    ui.ready().await;

    let creada_message = message_on(&topic, &EventoReserva::Creada(creada.clone()));
    let aprobada_message = message_on(&topic, &EventoReserva::Aprobada(aprobada.clone()));
    publish(&broker, &creada_message).await;
    publish(&broker, &aprobada_message).await;

    // Same key, so the order holds: created, then approved. fastavro names the union branch
    // each was written as.
    let first = ui.next_json(DELIVERY).await;
    assert_eq!(
        first["record"],
        json!({"data": ["ReservaCreadaPayload", {
            "id_reserva": creada.id_reserva,
            "id_cliente": creada.id_cliente,
            "estado": creada.estado,
            "fecha_creacion": creada.fecha_creacion,
        }]}),
        "{first}"
    );
    assert_eq!(first["properties"]["type"], "EventoReservaCreada");
    assert_eq!(
        first["properties"]["id"],
        creada_message.envelope.id.as_str()
    );
    let second = ui.next_json(DELIVERY).await;
    assert_eq!(
        second["record"],
        json!({"data": ["ReservaAprobadaPayload", {
            "id_reserva": aprobada.id_reserva,
            "fecha_actualizacion": aprobada.fecha_actualizacion,
        }]}),
        "{second}"
    );
    assert_eq!(second["properties"]["type"], "EventoReservaAprobada");
    assert_eq!(
        second["properties"]["id"],
        aprobada_message.envelope.id.as_str()
    );
    ui.succeeds().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar and Python pulsar-client: scripts/services up pulsar; pip install -r tests/python/requirements.txt"]
async fn a_python_v1_consumer_keeps_reading_our_v2_events() {
    let topic = unique("interop-v2");
    // What the reference system announces for `eventos-reserva`: v1 and v2 registered, v2 wins.
    let schema = TopicSchema::derived(
        &topic,
        &[
            MessageSchema::of::<EventoReservaCreada>(),
            MessageSchema::of::<v2::EventoReservaCreada>(),
        ],
    )
    .expect("derives");
    assert!(schema.definition().expect("Avro").contains("creada_en"));
    let broker = broker(schema).await;
    let subscription = unique("py-notificaciones");
    let mut python = Python::spawn(
        "consume-events",
        &[
            "--topic",
            &topic,
            "--subscription",
            &subscription,
            "--count",
            "1",
            "--timeout",
            "60",
        ],
    );
    python.ready().await;
    let sent = v2::a_v2(evento(3));
    assert!(sent.creada_en.is_some());
    let message = message_on(&topic, &sent);
    assert_eq!(message.envelope.specversion, "v2");
    publish(&broker, &message).await;

    let line = python.next_json(DELIVERY).await;
    assert_eq!(line["record"], "EventoReservaCreada", "{line}");
    assert_eq!(
        line["data"],
        json!({
            "id_reserva": sent.id_reserva,
            "id_cliente": sent.id_cliente,
            "estado": sent.estado,
            "fecha_creacion": sent.fecha_creacion,
        }),
        "the v1 record reads its fields and skips the new one"
    );
    assert_eq!(line["properties"]["specversion"], "v2", "{line}");
    python.succeeds().await;
}

fn comando() -> ComandoCrearReserva {
    let aeropuerto = |codigo: &str, nombre: &str| Aeropuerto {
        codigo: codigo.into(),
        nombre: nombre.into(),
    };
    ComandoCrearReserva {
        id_usuario: format!("usuario-{}", uuid::Uuid::new_v4().simple()),
        id_reserva: uuid::Uuid::new_v4().to_string(),
        fecha_creacion: Some("2025-09-03T12:00:00Z".into()),
        fecha_actualizacion: Some("2025-09-03T12:05:00Z".into()),
        itinerarios: vec![Itinerario {
            odos: vec![Odo {
                segmentos: vec![Segmento {
                    legs: vec![Leg {
                        fecha_salida: "2022-11-22T13:10:00Z".into(),
                        fecha_llegada: "2022-11-22T15:10:00Z".into(),
                        origen: aeropuerto(
                            "gggg",
                            "El Dorado - Bogotá International Airport (BOG)",
                        ),
                        destino: aeropuerto("sasads", "John F. Kennedy International Airport"),
                    }],
                }],
            }],
        }],
    }
}

async fn receive(consumer: &mut Box<dyn Consumer>) -> Delivery {
    tokio::time::timeout(DELIVERY, consumer.receive())
        .await
        .expect("our consumer received the Python command in time")
        .expect("the Python command decodes")
}

/// Python sends a full command on `topic`, our consumer (already subscribed) decodes it.
async fn python_command_reaches(topic: &str, consumer: &mut Box<dyn Consumer>) {
    let sent = comando();
    let payload = serde_json::to_string(&sent).expect("JSON");
    let lines = Python::run(
        "produce-command",
        &[
            "--topic",
            topic,
            "--json",
            &payload,
            "--key",
            &sent.id_reserva,
        ],
    )
    .await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["sent"], true, "{lines:?}");

    let delivery = receive(consumer).await;
    let message = &delivery.message;
    assert_eq!(message.envelope.message_type, "ComandoCrearReserva");
    assert_eq!(message.topic, topic);
    // Python sends no envelope properties: the adapter fills them from the topic and broker.
    assert_eq!(message.envelope.specversion, "v1");
    assert_eq!(message.envelope.datacontenttype, "avro/binary");
    assert!(
        message.id().starts_with(&format!("pulsar:{topic}:")),
        "an id from the broker position: {}",
        message.id()
    );
    assert!(message.envelope.time > 0 && message.envelope.ingestion > 0);
    assert!(!message.envelope.service_name.is_empty());
    assert!(message.properties.is_empty(), "{:?}", message.properties);
    assert_eq!(message.key.as_deref(), Some(sent.id_reserva.as_str()));
    let decoded = message
        .decode::<ComandoCrearReserva>()
        .expect("decodes as ComandoCrearReserva");
    assert_eq!(decoded.data, sent);
    consumer.ack(&delivery).await.expect("acked");
}

async fn commands_broker(topic: &str) -> PulsarBroker {
    broker(commands_schema(topic)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar and Python pulsar-client: scripts/services up pulsar; pip install -r tests/python/requirements.txt"]
async fn our_consumer_decodes_a_python_command_when_we_subscribed_first() {
    let topic = unique("interop-commands");
    let broker = commands_broker(&topic).await;
    let mut consumer = broker
        .subscribe(SubscriptionOptions::new(&topic, "aeroalpes-sub-comandos"))
        .await
        .expect("subscribed");
    python_command_reaches(&topic, &mut consumer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar and Python pulsar-client: scripts/services up pulsar; pip install -r tests/python/requirements.txt"]
async fn our_consumer_decodes_a_python_command_when_python_registered_first() {
    let topic = unique("interop-commands");
    let lines = Python::run(
        "register-schema",
        &["--topic", &topic, "--record", "ComandoCrearReserva"],
    )
    .await;
    assert_eq!(
        lines,
        vec![json!({"registered": true, "record": "ComandoCrearReserva"})]
    );
    let python_first = registry_schema(&topic).await;
    assert_eq!(
        without_defaults(&parse(python_first["data"].as_str().expect("schema data"))),
        without_defaults(&definition(&commands_schema(&topic))),
        "the Python command schema is ours, defaults aside"
    );

    let broker = commands_broker(&topic).await;
    let mut consumer = broker
        .subscribe(SubscriptionOptions::new(&topic, "aeroalpes-sub-comandos"))
        .await
        .expect("our consumer is accepted on the Python schema");
    python_command_reaches(&topic, &mut consumer).await;
}

/// The wire fact as quoted in the reference (`original-system.md`), when this checkout sits
/// beside it (`../shared/reference/`); `None` elsewhere.
fn quoted_wire_fact() -> Option<String> {
    let doc =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/original-system.md");
    let text = std::fs::read_to_string(&doc).ok()?;
    let extract = || {
        let start = text.find("registers for `eventos-reserva` is exactly")?;
        // Past the backticks around `eventos-reserva`, then the schema's own.
        let mut rest = &text[start..];
        for _ in 0..3 {
            rest = &rest[rest.find('`')? + 1..];
        }
        Some(rest[..rest.find('`')?].to_string())
    };
    Some(extract().unwrap_or_else(|| panic!("no wire fact quoted in {}", doc.display())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar and Python pulsar-client: scripts/services up pulsar; pip install -r tests/python/requirements.txt"]
async fn the_python_schema_is_the_wire_fact() {
    if let Some(quoted) = quoted_wire_fact() {
        assert_eq!(
            parse(&quoted),
            parse(WIRE_FACT),
            "the reference's quote: {quoted}"
        );
    }

    let lines = Python::run("python-schema", &[]).await;
    let schema_of = |record: &str| {
        lines
            .iter()
            .find(|l| l["record"] == record)
            .unwrap_or_else(|| panic!("no schema for {record}: {lines:?}"))["schema"]
            .clone()
    };

    // The derived schemas are the Python ones but for the `null` defaults, and each side may
    // follow the other under the namespace's FULL strategy.
    for (record, ours) in [
        ("EventoReservaCreada", events_schema("t")),
        ("ComandoCrearReserva", commands_schema("t")),
    ] {
        let python = schema_of(record);
        if record == "EventoReservaCreada" {
            assert_eq!(python, parse(WIRE_FACT), "{python}");
        }
        let ours_text = ours.definition().expect("Avro");
        assert_eq!(
            without_defaults(&python),
            without_defaults(&parse(ours_text)),
            "{record}"
        );
        let python_text = python.to_string();
        check(&python_text, ours_text, Compatibility::Full)
            .unwrap_or_else(|e| panic!("{record}: ours may not follow Python's: {e}"));
        check(ours_text, &python_text, Compatibility::Full)
            .unwrap_or_else(|e| panic!("{record}: Python's may not follow ours: {e}"));
    }
}
