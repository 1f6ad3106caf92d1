//! The reservation saga (tutorial 8) of the reference system, end to end over HTTP: a
//! reservation requested through `/vuelos/reserva-comando` is paid (`pagos`), confirmed with the
//! GDS (`integracion_gds`) and approved; a step made to fail (`baggage: demo-falla=…`) or to stay
//! silent past its deadline (`demo-silencio=…`) undoes the steps before it, in reverse, once
//! each; a process killed with SIGKILL in the middle of many sagas ends every one of them as if
//! it had not been killed.
//!
//! | test | store and broker | needs |
//! |---|---|---|
//! | `on_sqlite::*` | SQLite, the durable transport (the default), in process | nothing |
//! | `sagas_survive_kill_9` | the example binary on SQLite (the default) | nothing |
//! | `sagas_survive_kill_9_on_postgres_and_pulsar` | the binary on PostgreSQL and Pulsar | both |
//!
//! Every wait is bounded; every saga's log is compared whole, so a step sent twice, a
//! compensation out of order or a lost message fails the test.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use alpespartners::system::{BrokerChoice, Database};
use seedwork_tests::faults::{self, Store};
use seedwork_tests::processes::{default_example_binary, free_port, Service};
use seedwork_tests::system::{reserva_del_readme, start_with_saga, Running};

/// Longest a saga may take to end once started, in process.
const END: Duration = Duration::from_secs(30);

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Requests a reservation asynchronously in conversation `correlation`, with `baggage`.
async fn solicitar(
    http: &reqwest::Client,
    api: &str,
    id: &str,
    correlation: &str,
    baggage: Option<&str>,
) {
    let mut request = http
        .post(format!("{api}/vuelos/reserva-comando"))
        .header("x-correlation-id", correlation)
        .json(&reserva_del_readme(id));
    if let Some(baggage) = baggage {
        request = request.header("baggage", baggage);
    }
    let response = request.send().await.expect("the API answers");
    assert_eq!(response.status(), StatusCode::ACCEPTED, "request {id}");
    assert_eq!(
        response
            .headers()
            .get("x-correlation-id")
            .and_then(|v| v.to_str().ok()),
        Some(correlation),
        "the response names the conversation"
    );
}

/// The saga of `correlation` as `GET /sagas/{id}` answers it, once there is one.
async fn saga(http: &reqwest::Client, api: &str, correlation: &str) -> Option<Value> {
    let response = http
        .get(format!("{api}/sagas/{correlation}"))
        .send()
        .await
        .ok()?;
    if response.status() != StatusCode::OK {
        return None;
    }
    let sagas: Value = response.json().await.ok()?;
    let [only] = sagas.as_array()?.as_slice() else {
        panic!("one saga per conversation: {sagas}");
    };
    Some(only.clone())
}

fn terminal(saga: &Value) -> bool {
    matches!(saga["status"].as_str(), Some("completed" | "compensated"))
}

/// Waits (bounded) for the saga of `correlation` to end, and answers it.
async fn ended(http: &reqwest::Client, api: &str, correlation: &str, limit: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let last = saga(http, api, correlation).await;
        if let Some(saga) = last.as_ref().filter(|s| terminal(s)) {
            return saga.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the saga of {correlation} did not end within {limit:?}: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The log as `step kind message_type` lines.
fn log(saga: &Value) -> Vec<String> {
    saga["log"]
        .as_array()
        .expect("a log")
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["paso"].as_str().unwrap_or_default(),
                e["kind"].as_str().unwrap_or_default(),
                e["message_type"].as_str().unwrap_or_default()
            )
            .trim_end()
            .to_string()
        })
        .collect()
}

const COMIENZO: [&str; 3] = [
    "reserva started EventoReservaCreada",
    "reserva succeeded EventoReservaCreada",
    "pago command_sent ComandoPagarReserva",
];

fn expected(rest: &[&str]) -> Vec<String> {
    COMIENZO
        .iter()
        .chain(rest)
        .map(|line| line.to_string())
        .collect()
}

/// The log of a saga that ended approved.
fn completed_log() -> Vec<String> {
    expected(&[
        "pago succeeded ReservaPagada",
        "gds command_sent ComandoConfirmarReserva",
        "gds succeeded ReservaConfirmada",
        "aprobacion command_sent ComandoAprobarReserva",
        "aprobacion succeeded EventoReservaAprobada",
        "aprobacion completed",
    ])
}

/// The log of a saga whose step `falla` failed.
fn compensated_log(falla: &str) -> Vec<String> {
    match falla {
        "pago" => expected(&[
            "pago failed PagoFallido",
            "reserva compensation_sent ComandoCancelarReserva",
            "reserva compensated EventoReservaCancelada",
            "reserva aborted",
        ]),
        "gds" => expected(&[
            "pago succeeded ReservaPagada",
            "gds command_sent ComandoConfirmarReserva",
            "gds failed ConfirmacionFallida",
            "pago compensation_sent ComandoRevertirPago",
            "pago compensated PagoRevertido",
            "reserva compensation_sent ComandoCancelarReserva",
            "reserva compensated EventoReservaCancelada",
            "reserva aborted",
        ]),
        "aprobacion" => expected(&[
            "pago succeeded ReservaPagada",
            "gds command_sent ComandoConfirmarReserva",
            "gds succeeded ReservaConfirmada",
            "aprobacion command_sent ComandoAprobarReserva",
            "aprobacion failed EventoAprobacionReservaFallida",
            "gds compensation_sent ComandoRevertirConfirmacion",
            "gds compensated ConfirmacionRevertida",
            "pago compensation_sent ComandoRevertirPago",
            "pago compensated PagoRevertido",
            "reserva compensation_sent ComandoCancelarReserva",
            "reserva compensated EventoReservaCancelada",
            "reserva aborted",
        ]),
        other => panic!("no step {other}"),
    }
}

async fn estado(http: &reqwest::Client, api: &str, id: &str) -> String {
    let reserva: Value = http
        .get(format!("{api}/vuelos/reserva/{id}"))
        .send()
        .await
        .expect("the API answers")
        .json()
        .await
        .expect("JSON");
    reserva["estado"].as_str().unwrap_or_default().to_string()
}

async fn sqlite(plazo: Duration) -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let database = Database::Sqlite(dir.path().join("saga.db").display().to_string());
    (
        start_with_saga(database, BrokerChoice::Database, plazo).await,
        dir,
    )
}

mod on_sqlite {
    use super::*;

    /// The happy path: paid, confirmed, approved; each command sent once; the reservation
    /// approved and its creation and approval notified.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reservation_is_paid_confirmed_and_approved() {
        let (r, _dir) = sqlite(Duration::from_secs(30)).await;
        let (id, correlation) = (unique("saga-ok"), unique("conversacion"));
        solicitar(&r.http, &r.api, &id, &correlation, None).await;
        let saga = ended(&r.http, &r.api, &correlation, END).await;
        assert_eq!(saga["status"], "completed", "{saga}");
        assert_eq!(log(&saga), completed_log(), "{saga}");
        assert_eq!(saga["state"]["id_reserva"], id.as_str());
        assert_eq!(estado(&r.http, &r.api, &id).await, "Aprobada");
        faults::within(END, "creation and approval are notified", || {
            let (http, api, id) = (r.http.clone(), r.api.clone(), id.clone());
            async move { faults::notified_kinds(&http, &api, &id).await == ["Creada", "Aprobada"] }
        })
        .await;
        r.system.shutdown().await;
    }

    /// A failure at each step compensates exactly the steps before it, in reverse, once each,
    /// and the reservation ends cancelled.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_at_each_step_undoes_the_steps_before_it() {
        let (r, _dir) = sqlite(Duration::from_secs(30)).await;
        let mut conversations = Vec::new();
        for falla in ["pago", "gds", "aprobacion"] {
            let (id, correlation) = (unique(&format!("saga-{falla}")), unique("conversacion"));
            let baggage = format!("demo-falla={falla}");
            solicitar(&r.http, &r.api, &id, &correlation, Some(&baggage)).await;
            conversations.push((falla, id, correlation));
        }
        for (falla, id, correlation) in conversations {
            let saga = ended(&r.http, &r.api, &correlation, END).await;
            assert_eq!(saga["status"], "compensated", "{falla}: {saga}");
            assert_eq!(log(&saga), compensated_log(falla), "{falla}: {saga}");
            assert!(
                saga["failure"]
                    .as_str()
                    .is_some_and(|f| f.contains(&format!("demo-falla={falla}"))),
                "{saga}"
            );
            assert_eq!(estado(&r.http, &r.api, &id).await, "Cancelada", "{falla}");
        }
        r.system.shutdown().await;
    }

    /// A step whose answer is lost times out: the step itself and the ones before it are
    /// undone. A late answer would be recorded as ignored; here there is none.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_step_that_gets_no_answer_in_time_takes_the_failure_path() {
        // Long enough for the answered steps before it on a loaded machine: the test is about
        // the step whose answer is lost.
        let (r, _dir) = sqlite(Duration::from_secs(3)).await;
        let (id, correlation) = (unique("saga-plazo"), unique("conversacion"));
        solicitar(
            &r.http,
            &r.api,
            &id,
            &correlation,
            Some("demo-silencio=gds"),
        )
        .await;
        let saga = ended(&r.http, &r.api, &correlation, END).await;
        assert_eq!(saga["status"], "compensated", "{saga}");
        assert_eq!(
            log(&saga),
            expected(&[
                "pago succeeded ReservaPagada",
                "gds command_sent ComandoConfirmarReserva",
                "gds timed_out",
                "gds compensation_sent ComandoRevertirConfirmacion",
                "gds compensated ConfirmacionRevertida",
                "pago compensation_sent ComandoRevertirPago",
                "pago compensated PagoRevertido",
                "reserva compensation_sent ComandoCancelarReserva",
                "reserva compensated EventoReservaCancelada",
                "reserva aborted",
            ]),
            "{saga}"
        );
        assert_eq!(saga["failure"], "step `gds` timed out");
        assert_eq!(estado(&r.http, &r.api, &id).await, "Cancelada");
        r.system.shutdown().await;
    }

    /// A deadline that passes while the process is down is taken after the restart: deadlines
    /// live in the store with the instance.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deadline_passed_while_stopped_is_taken_after_the_restart() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let database = Database::Sqlite(dir.path().join("saga.db").display().to_string());
        // Long enough for the answered payment step on a loaded machine.
        let plazo = Duration::from_secs(4);
        let r = start_with_saga(database.clone(), BrokerChoice::Database, plazo).await;
        let (id, correlation) = (unique("saga-parada"), unique("conversacion"));
        solicitar(
            &r.http,
            &r.api,
            &id,
            &correlation,
            Some("demo-silencio=gds"),
        )
        .await;
        // Until the GDS step waits for its (lost) answer.
        let deadline = tokio::time::Instant::now() + END;
        let waiting = loop {
            if let Some(saga) = saga(&r.http, &r.api, &correlation).await {
                if saga["paso"] == "gds" && saga["deadline"].is_i64() {
                    break saga;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the saga never reached gds"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        r.system.shutdown().await;
        // Stopped until the deadline has passed (the clock, not a guess).
        let due = waiting["deadline"].as_i64().expect("a deadline");
        while chrono::Utc::now().timestamp_millis() <= due {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let r = start_with_saga(database, BrokerChoice::Database, plazo).await;
        let saga = ended(&r.http, &r.api, &correlation, END).await;
        assert_eq!(saga["status"], "compensated", "{saga}");
        assert_eq!(saga["failure"], "step `gds` timed out");
        let log = log(&saga);
        assert_eq!(
            log.iter().filter(|l| *l == "gds timed_out").count(),
            1,
            "{log:?}"
        );
        assert_eq!(estado(&r.http, &r.api, &id).await, "Cancelada");
        r.system.shutdown().await;
    }

    /// `GET /sagas/{id}` of a conversation no saga follows is a 404 with a JSON error; a bad
    /// baggage header is a 400 and nothing is accepted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unknown_conversation_is_404_and_bad_baggage_is_400() {
        let (r, _dir) = sqlite(Duration::from_secs(30)).await;
        let response = r
            .http
            .get(format!("{}/sagas/nadie", r.api))
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body: Value = response.json().await.expect("JSON");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("nadie")),
            "{body}"
        );

        let id = unique("saga-bad");
        let response = r
            .http
            .post(format!("{}/vuelos/reserva-comando", r.api))
            .header("baggage", "sin-valor")
            .json(&reserva_del_readme(&id))
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let response = r
            .http
            .get(format!("{}/vuelos/reserva/{id}", r.api))
            .send()
            .await
            .expect("answers");
        assert_eq!(
            response.status(),
            StatusCode::NOT_FOUND,
            "nothing was accepted"
        );
        r.system.shutdown().await;
    }
}

// --- kill -9 in the middle of many sagas ------------------------------------------------------

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const READY: &str = "AlpesPartners is running";
const START: Duration = Duration::from_secs(60);
/// Longest the restarted system may take to end every saga (a killed consumer's lease on the
/// durable transport, 15 s, is the slowest part).
const RECOVERY: Duration = Duration::from_secs(120);
/// Sagas started before the kill; every fourth is made to fail at the GDS.
const SAGAS: usize = 24;

struct Crash {
    binary: PathBuf,
    database: Option<String>,
    broker: Option<String>,
}

impl Crash {
    fn args(&self, dir: &std::path::Path, api: u16, ui: u16) -> Vec<String> {
        let mut args = vec![
            "--data-dir".into(),
            dir.display().to_string(),
            "--http".into(),
            format!("127.0.0.1:{api}"),
            "--ui".into(),
            format!("127.0.0.1:{ui}"),
            // Longer than the recovery may take (a killed relay's outbox leases run out first):
            // what is tested is that no step is lost or repeated, not that none times out.
            "--saga-timeout".into(),
            "600".into(),
        ];
        if let Some(database) = &self.database {
            args.extend(["--database".into(), database.clone()]);
        }
        if let Some(broker) = &self.broker {
            args.extend(["--broker".into(), broker.clone()]);
        }
        args
    }

    async fn start(&self, dir: &std::path::Path, api: u16, ui: u16, name: &str) -> Service {
        let mut service = Service::spawn_binary(
            &self.binary,
            name,
            &self.args(dir, api, ui),
            &[("RUST_LOG", "warn")],
        );
        service.wait_for(READY, START).await;
        service
    }

    /// Starts many sagas, kills the process with SIGKILL while some are still under way,
    /// starts it again on the same store, and checks that every saga ends as it would have:
    /// the approved ones with the whole happy log, the failed ones with the whole compensated
    /// log, each step and compensation once.
    async fn run(self) {
        let _serial = ONE_AT_A_TIME.lock().await;
        let dir = tempfile::tempdir().expect("a temp dir");
        let (api_port, ui_port) = (free_port(), free_port());
        let api = format!("http://127.0.0.1:{api_port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a client");
        let mut service = self.start(dir.path(), api_port, ui_port, "before").await;

        let prefix = format!("crash-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let mut sagas: BTreeMap<String, (String, Option<&str>)> = BTreeMap::new();
        for n in 0..SAGAS {
            let (id, correlation) = (format!("{prefix}-{n:02}"), format!("{prefix}-c{n:02}"));
            let falla = (n % 4 == 3).then_some("gds");
            let baggage = falla.map(|f| format!("demo-falla={f}"));
            solicitar(&http, &api, &id, &correlation, baggage.as_deref()).await;
            sagas.insert(correlation, (id, falla));
        }
        // Kill as soon as one saga is under way: the others are at every stage by then.
        let deadline = tokio::time::Instant::now() + RECOVERY;
        'wait: loop {
            assert!(tokio::time::Instant::now() < deadline, "no saga started");
            for correlation in sagas.keys() {
                if saga(&http, &api, correlation).await.is_some() {
                    break 'wait;
                }
            }
        }
        service.kill();
        let store = match &self.database {
            Some(url) => Store::Postgres(url.clone()),
            None => Store::Sqlite(dir.path().join("alpespartners.db")),
        };
        let ended_at_kill = store.ended_sagas(&prefix).await;
        assert!(
            ended_at_kill < SAGAS as i64,
            "every saga had ended when the process was killed: nothing was tested"
        );

        let mut restarted = self.start(dir.path(), api_port, ui_port, "after").await;
        let mut wrong = Vec::new();
        for (correlation, (id, falla)) in &sagas {
            let saga = ended(&http, &api, correlation, RECOVERY).await;
            let (status, log_expected, estado_expected) = match falla {
                None => ("completed", completed_log(), "Aprobada"),
                Some(falla) => ("compensated", compensated_log(falla), "Cancelada"),
            };
            let estado = estado(&http, &api, id).await;
            if saga["status"] != status || log(&saga) != log_expected || estado != estado_expected {
                wrong.push(format!("{correlation} ({id} {estado}): {saga}"));
            }
        }
        assert!(
            wrong.is_empty(),
            "sagas that did not end as they should: {wrong:#?}"
        );
        if self.broker.is_none() {
            assert_eq!(store.dead_letters().await, 0, "nothing was dead-lettered");
        }
        restarted.kill();
    }
}

/// The embedded default: SQLite and the durable transport in the same file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sagas_survive_kill_9() {
    Crash {
        binary: default_example_binary(),
        database: None,
        broker: None,
    }
    .run()
    .await;
}

/// PostgreSQL and Pulsar, one process with every service.
#[cfg(feature = "pulsar")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL and Pulsar: scripts/services up"]
async fn sagas_survive_kill_9_on_postgres_and_pulsar() {
    Crash {
        binary: seedwork_tests::processes::example_binary(),
        database: Some(seedwork_tests::processes::postgres_schema_url().await),
        broker: Some(
            std::env::var("SEEDWORK_PULSAR_URL")
                .unwrap_or_else(|_| "pulsar://127.0.0.1:6650".into()),
        ),
    }
    .run()
    .await;
}

/// The saga across processes on Pulsar and PostgreSQL: the API with the coordinator, `pagos`
/// and `integracion_gds` each in a process of its own. One reservation ends approved, one made
/// to fail at the GDS ends compensated, each with its whole log.
#[cfg(feature = "pulsar")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL and Pulsar: scripts/services up"]
async fn the_saga_runs_across_processes_on_pulsar() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let database = seedwork_tests::processes::postgres_schema_url().await;
    let pulsar =
        std::env::var("SEEDWORK_PULSAR_URL").unwrap_or_else(|_| "pulsar://127.0.0.1:6650".into());
    let binary = seedwork_tests::processes::example_binary();
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    let spawn = |name: &str, services: &str, extra: &[String]| {
        let mut args = vec![
            "--database".to_string(),
            database.clone(),
            "--broker".into(),
            pulsar.clone(),
            "--services".into(),
            services.into(),
        ];
        args.extend_from_slice(extra);
        Service::spawn_binary(&binary, name, &args, &[("RUST_LOG", "warn")])
    };
    let mut processes = vec![
        spawn(
            "api",
            "api",
            &["--http".into(), format!("127.0.0.1:{port}")],
        ),
        spawn("pagos", "pagos", &[]),
        spawn("integracion_gds", "integracion_gds", &[]),
    ];
    for process in &mut processes {
        process.wait_for(READY, START).await;
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let prefix = format!(
        "procesos-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let (ok, falla) = (format!("{prefix}-ok"), format!("{prefix}-gds"));
    solicitar(&http, &api, &ok, &format!("{ok}-c"), None).await;
    solicitar(
        &http,
        &api,
        &falla,
        &format!("{falla}-c"),
        Some("demo-falla=gds"),
    )
    .await;
    let saga_ok = ended(&http, &api, &format!("{ok}-c"), RECOVERY).await;
    assert_eq!(log(&saga_ok), completed_log(), "{saga_ok}");
    let saga_falla = ended(&http, &api, &format!("{falla}-c"), RECOVERY).await;
    assert_eq!(log(&saga_falla), compensated_log("gds"), "{saga_falla}");
    assert_eq!(estado(&http, &api, &ok).await, "Aprobada");
    assert_eq!(estado(&http, &api, &falla).await, "Cancelada");
    for mut process in processes {
        process.kill();
    }
}
