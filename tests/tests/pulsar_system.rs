//! The reference system as separate processes on real Pulsar and PostgreSQL: the API (with
//! its command consumer and relay), two `notificaciones`, and the UI, each its own process.
//!
//! Needs `scripts/services up postgres` and `scripts/services up pulsar`. The tests share the
//! broker's fixed topics and subscriptions (and one of them stops the broker), so they run one
//! at a time, and they only count the reservations they created themselves.
#![cfg(feature = "pulsar")]

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use seedwork_tests::processes::{free_port, postgres_schema_url, pulsar_service, Service};
use seedwork_tests::system::reserva_del_readme;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const READY: &str = "AlpesPartners is running";
const START: Duration = Duration::from_secs(60);
const DELIVERY: Duration = Duration::from_secs(90);

fn pulsar_url() -> String {
    std::env::var("SEEDWORK_PULSAR_URL").unwrap_or_else(|_| "pulsar://127.0.0.1:6650".into())
}

fn args(services: &str, extra: &[String]) -> Vec<String> {
    let mut args = vec![
        "--services".to_string(),
        services.to_string(),
        "--broker".to_string(),
        pulsar_url(),
        "--sagas".to_string(),
        "off".to_string(),
    ];
    args.extend_from_slice(extra);
    args
}

async fn start(name: &str, services: &str, extra: &[String], database: &str) -> Service {
    let mut service = Service::spawn(name, &args(services, extra), &[("DATABASE_URL", database)]);
    service.wait_for(READY, START).await;
    service
}

/// The API process on a free port, and that port.
async fn start_api(database: &str) -> (Service, u16) {
    let port = free_port();
    let api = start(
        "api",
        "api",
        &["--http".into(), format!("127.0.0.1:{port}")],
        database,
    )
    .await;
    (api, port)
}

/// How many notification lines each id got, over several processes.
fn notified(services: &[&Service], ids: &[String]) -> BTreeMap<String, usize> {
    ids.iter()
        .map(|id| {
            let count = services
                .iter()
                .map(|s| {
                    s.lines()
                        .iter()
                        .filter(|l| l.contains("Mensaje Recibido") && l.contains(id.as_str()))
                        .count()
                })
                .sum();
            (id.clone(), count)
        })
        .collect()
}

/// Waits until every id was notified at least once, then lets duplicates show up for a while.
async fn expect_each_notified_once(services: &[&Service], ids: &[String]) {
    let deadline = tokio::time::Instant::now() + DELIVERY;
    loop {
        let counts = notified(services, ids);
        if counts.values().all(|c| *c >= 1) {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let output: Vec<String> = services
                .iter()
                .map(|s| format!("--- {}\n{}", s.name(), s.lines().join("\n")))
                .collect();
            panic!(
                "not every reservation was notified: {counts:?}\n{}",
                output.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let counts = notified(services, ids);
    assert!(
        counts.values().all(|c| *c == 1),
        "each reservation is notified exactly once: {counts:?}"
    );
}

async fn post(http: &reqwest::Client, url: String, body: &Value) -> StatusCode {
    http.post(url)
        .json(body)
        .send()
        .await
        .expect("the API answers")
        .status()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Creates `count` reservations: half synchronously (`/vuelos/reserva`, 200), half as commands
/// travelling through `comandos-reserva` (`/vuelos/reserva-comando`, 202). Returns their ids.
async fn create_reservations(http: &reqwest::Client, api_port: u16, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let id = new_id();
        let (path, expected) = if n % 2 == 0 {
            ("/vuelos/reserva", StatusCode::OK)
        } else {
            ("/vuelos/reserva-comando", StatusCode::ACCEPTED)
        };
        let status = post(
            http,
            format!("http://127.0.0.1:{api_port}{path}"),
            &reserva_del_readme(&id),
        )
        .await;
        assert_eq!(status, expected, "{path}");
        ids.push(id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar and PostgreSQL: scripts/services up"]
async fn services_run_as_processes_and_share_a_subscription() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let database = postgres_schema_url().await;
    let (api, api_port) = start_api(&database).await;
    let ui_port = free_port();
    let first = start("notificaciones-1", "notificaciones", &[], &database).await;
    let second = start("notificaciones-2", "notificaciones", &[], &database).await;
    let ui = start(
        "ui",
        "ui",
        &["--ui".into(), format!("127.0.0.1:{ui_port}")],
        &database,
    )
    .await;
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{ui_port}/ws"))
        .await
        .expect("the UI websocket connects");

    let http = reqwest::Client::new();
    let ids = create_reservations(&http, api_port, 10).await;

    expect_each_notified_once(&[&first, &second], &ids).await;
    for service in [&first, &second] {
        let own = notified(&[service], &ids).values().sum::<usize>();
        assert!(
            own >= 1,
            "{} got none of the 10 events: a Shared subscription spreads them",
            service.name()
        );
    }

    // The UI process forwards every event to the browser.
    let mut seen: Vec<String> = Vec::new();
    let read = async {
        while let Some(Ok(message)) = socket.next().await {
            if let WsMessage::Text(text) = message {
                let value: Value = serde_json::from_str(text.as_str()).expect("JSON");
                if value["type"] == "EventoReservaCreada" {
                    if let Some(id) = value["data"]["id_reserva"].as_str() {
                        if ids.iter().any(|i| i == id) && !seen.iter().any(|s| s == id) {
                            seen.push(id.to_string());
                        }
                    }
                }
                if seen.len() == ids.len() {
                    return;
                }
            }
        }
    };
    if tokio::time::timeout(DELIVERY, read).await.is_err() {
        panic!(
            "the UI websocket delivered {} of {} events:\n{}",
            seen.len(),
            ids.len(),
            ui.lines().join("\n")
        );
    }

    // The UI's subscription is non-durable, and goes with its process, even one killed
    // without a chance to close its consumer: nothing collects `ciclo-reserva` for it later.
    let own = format!("-127-0-0-1-{ui_port}");
    let listed = ui_subscriptions(&http, &own).await;
    assert_eq!(
        listed.len(),
        1,
        "the UI process subscribes once: {listed:?}"
    );
    assert!(
        listed[0].0.starts_with("aeroalpes-bff-en-vivo-") && !listed[0].1,
        "a non-durable subscription of the UI: {listed:?}"
    );
    let mut ui = ui;
    ui.kill();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !ui_subscriptions(&http, &own).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the killed UI's subscription is still on the broker after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Commands sent through the broker were executed by the API's consumer.
    let stored = http
        .get(format!(
            "http://127.0.0.1:{api_port}/vuelos/reserva-query/{}",
            ids[1]
        ))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(stored.status(), StatusCode::OK);
    drop(api);
}

/// The subscriptions of `ciclo-reserva` whose name ends with `suffix`, with whether each is
/// durable, from the broker's topic stats.
async fn ui_subscriptions(http: &reqwest::Client, suffix: &str) -> Vec<(String, bool)> {
    let stats: Value = http
        .get(format!(
            "{}/admin/v2/persistent/public/default/ciclo-reserva/stats",
            seedwork_tests::faults::pulsar_admin()
        ))
        .send()
        .await
        .expect("the admin API answers")
        .json()
        .await
        .expect("JSON stats");
    stats["subscriptions"]
        .as_object()
        .expect("a map of subscriptions")
        .iter()
        .filter(|(name, _)| name.ends_with(suffix))
        .map(|(name, sub)| (name.clone(), sub["isDurable"].as_bool().unwrap_or(true)))
        .collect()
}

/// Asks `url` (a `/health`) until it answers `status`, within a minute; its body.
async fn health_until(http: &reqwest::Client, url: &str, status: StatusCode) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = http.get(url).send().await {
            if response.status() == status {
                return response.json().await.expect("a JSON health body");
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} never answered {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar and PostgreSQL: scripts/services up"]
async fn a_broker_outage_loses_no_event_and_duplicates_none() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let database = postgres_schema_url().await;
    let (api, api_port) = start_api(&database).await;
    let notifier = start("notificaciones", "notificaciones", &[], &database).await;
    let http = reqwest::Client::new();

    // Everything is connected before the outage.
    let warm_up = new_id();
    let status = post(
        &http,
        format!("http://127.0.0.1:{api_port}/vuelos/reserva"),
        &reserva_del_readme(&warm_up),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    expect_each_notified_once(&[&notifier], std::slice::from_ref(&warm_up)).await;

    pulsar_service("down");
    let health = format!("http://127.0.0.1:{api_port}/health");
    let down = health_until(&http, &health, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(down["parts"]["broker"]["status"], "down", "{down}");
    let outcome = create_reservations(&http, api_port, 6);
    // Bring the broker back even if the API misbehaved, so later tests have one.
    let accepted = tokio::time::timeout(Duration::from_secs(60), outcome).await;
    pulsar_service("up");
    let ids = accepted.expect("the API answered while the broker was down");

    expect_each_notified_once(&[&notifier], &ids).await;
    let up = health_until(&http, &health, StatusCode::OK).await;
    assert_eq!(up["parts"]["broker"]["status"], "up", "{up}");
    for id in ids.iter().skip(1).step_by(2) {
        let stored = http
            .get(format!(
                "http://127.0.0.1:{api_port}/vuelos/reserva-query/{id}"
            ))
            .send()
            .await
            .expect("the API answers");
        assert_eq!(
            stored.status(),
            StatusCode::OK,
            "the command for {id} ran after the outage"
        );
    }
    drop(api);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar and PostgreSQL: scripts/services up"]
async fn a_poison_event_is_dead_lettered_and_the_notifier_goes_on() {
    use seedwork_pulsar::pulsar::{self, Pulsar, TokioExecutor};
    let _serial = ONE_AT_A_TIME.lock().await;
    let database = postgres_schema_url().await;
    let (api, api_port) = start_api(&database).await;
    let notifier = start("notificaciones", "notificaciones", &[], &database).await;

    // Bounded retries: the client's default retries a lookup without end.
    let client = Pulsar::builder(pulsar_url(), TokioExecutor)
        .with_operation_retry_options(pulsar::OperationRetryOptions {
            operation_timeout: Duration::from_secs(10),
            retry_delay: Duration::from_millis(500),
            max_retries: Some(10),
        })
        .build()
        .await
        .expect("Pulsar is reachable");
    let dead_letters = "ciclo-reserva-sub-notificacion-eventos-reservas-DLQ";
    let mut graveyard = client
        .consumer()
        .with_topic(dead_letters)
        .with_subscription(format!("inspect-{}", uuid::Uuid::new_v4().simple()))
        .build::<Vec<u8>>()
        .await
        .expect("a raw consumer of the dead-letter topic");
    let poison = format!("poison {}", uuid::Uuid::new_v4());
    let mut producer = client
        .producer()
        .with_topic("ciclo-reserva")
        .build()
        .await
        .expect("a raw producer");
    producer
        .send_non_blocking(pulsar::producer::Message {
            payload: poison.clone().into_bytes(),
            ..Default::default()
        })
        .await
        .expect("sent")
        .await
        .expect("receipt");

    // The notifier dead-letters the poison and still handles the next event.
    let id = new_id();
    let status = post(
        &reqwest::Client::new(),
        format!("http://127.0.0.1:{api_port}/vuelos/reserva"),
        &reserva_del_readme(&id),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    expect_each_notified_once(&[&notifier], std::slice::from_ref(&id)).await;

    let found = tokio::time::timeout(DELIVERY, async {
        while let Some(Ok(message)) = graveyard.next().await {
            if message.payload.data == poison.as_bytes() {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        found,
        Ok(true),
        "the poison reached {dead_letters}:\n{}",
        notifier.lines().join("\n")
    );
    drop(api);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar, PostgreSQL and Python pulsar-client: scripts/services up; pip install -r tests/python/requirements.txt"]
async fn a_python_services_command_is_executed_by_the_api_process() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let database = postgres_schema_url().await;
    let (api, api_port) = start_api(&database).await;
    let id = new_id();
    let payload = serde_json::json!({
        "id_usuario": "cliente-python",
        "id_reserva": id,
        "fecha_creacion": "2025-09-03T12:00:00Z",
        "fecha_actualizacion": "2025-09-03T12:00:00Z",
        "itinerarios": reserva_del_readme(&id)["itinerarios"],
    });
    let python = std::env::var("SEEDWORK_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/interop.py");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .args(["produce-command", "--url", &pulsar_url(), "--topic"])
            .arg("comandos-reserva")
            .arg("--json")
            .arg(payload.to_string())
            .output()
            .expect("python runs")
    })
    .await
    .expect("joined");
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).contains("\"sent\""),
        "the Python producer failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{api_port}/vuelos/reserva-query/{id}");
    let deadline = tokio::time::Instant::now() + DELIVERY;
    let reserva: Value = loop {
        let response = http.get(&url).send().await.expect("the API answers");
        if response.status() == StatusCode::OK {
            break response.json().await.expect("JSON");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Python command was not executed:\n{}",
            api.lines().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(reserva["id_cliente"], "cliente-python");
    assert_eq!(reserva["estado"], "Pendiente");
}

/// Pulsar stops while a key's first message waits out a nack's backoff and its later messages
/// are held back behind it, then starts again (and the key's first message fails once more):
/// every message of each key is handled exactly once (by id) and in publish order, nothing is
/// lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Pulsar: scripts/services up"]
async fn per_key_order_survives_a_broker_restart_during_a_backoff() {
    use std::collections::BTreeSet;

    use seedwork::messaging::{Publisher, RetryPolicy, Subscriber, SubscriptionOptions};
    use seedwork::testing::contract::broker::{n_of, ping, unique_topic};
    use seedwork_pulsar::PulsarBroker;

    const PER_KEY: u32 = 15;
    let _serial = ONE_AT_A_TIME.lock().await;
    let broker = PulsarBroker::builder(pulsar_url())
        .max_reconnect_backoff(Duration::from_secs(1))
        .send_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("Pulsar is reachable");
    let topic = unique_topic("restart");
    let retry = RetryPolicy {
        max_deliveries: 10,
        initial_backoff: Duration::from_secs(3),
        max_backoff: Duration::from_secs(3),
        multiplier: 1,
    };
    let mut consumer = broker
        .subscribe(SubscriptionOptions::new(&topic, "s").retry(retry))
        .await
        .expect("subscribed");
    for n in 1..=PER_KEY {
        for key in ["a", "b"] {
            // Numbers are unique across keys: a's are odd, b's even.
            let number = if key == "a" { 2 * n - 1 } else { 2 * n };
            broker
                .publish(&ping(&topic, number, Some(key)))
                .await
                .expect("published");
        }
    }
    // a's first message fails once: a is held back behind its 3 s backoff.
    let first = tokio::time::timeout(DELIVERY, consumer.receive())
        .await
        .expect("a delivery")
        .expect("received");
    let mut handled: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut seen_ids = BTreeSet::new();
    let held_key = first.message.key.clone().expect("keyed");
    consumer.nack(&first).await.expect("nacked");

    broker
        .check()
        .await
        .expect("the broker answers a health check");
    pulsar_service("down");
    // While the broker is down the consumer hands out nothing new beyond what it holds; give
    // the outage a moment to be noticed by receiving with a short bound, then bring it back.
    let _ = tokio::time::timeout(Duration::from_secs(2), consumer.receive()).await;
    let down = broker
        .check()
        .await
        .expect_err("a stopped broker fails its health check");
    assert!(down.is_transient(), "an outage, not a refusal: {down:?}");
    pulsar_service("up");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while let Err(error) = broker.check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the broker never answered its health check again: {error}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    // After the restart, a's first message fails once more: a's later ones, redelivered
    // meanwhile, must wait behind it again.
    let mut failed_again = false;
    while handled.values().map(Vec::len).sum::<usize>() < 2 * PER_KEY as usize {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let delivery = tokio::time::timeout(remaining, consumer.receive())
            .await
            .unwrap_or_else(|_| panic!("not everything came back: {handled:?}"));
        let Ok(delivery) = delivery else {
            // A receive while the consumer rebuilds its stream; try again.
            continue;
        };
        let key = delivery.message.key.clone().expect("keyed");
        if key == "a" && !failed_again {
            failed_again = true;
            let _ = consumer.nack(&delivery).await;
            continue;
        }
        if seen_ids.insert(delivery.message.id().to_string()) {
            handled.entry(key).or_default().push(n_of(&delivery));
        }
        // A delivery from before the reconnection cannot be acked; the broker sends it again
        // and the id check above counts it once.
        let _ = consumer.ack(&delivery).await;
    }
    let expected_a: Vec<u32> = (1..=PER_KEY).map(|n| 2 * n - 1).collect();
    let expected_b: Vec<u32> = (1..=PER_KEY).map(|n| 2 * n).collect();
    assert_eq!(
        handled["a"], expected_a,
        "a in order, each once (held: {held_key})"
    );
    assert_eq!(handled["b"], expected_b, "b in order, each once");
}
