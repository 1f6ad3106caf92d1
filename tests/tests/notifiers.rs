//! Two notifier processes on one subscription: an API process and two `--services
//! notificaciones` processes share a PostgreSQL database, and the messages travel through its
//! durable transport or through Pulsar. Each of N reservations is created, approved and paid
//! in quick succession, all N at once. The notification subscription is Key_Shared, so each
//! reservation's three events are handled one at a time, in order, by whichever copy holds its
//! key: the notifiers' record must hold, for every reservation, created, approved and paid,
//! once each and in that order, and both copies must have done some of the work.
//!
//! Needs PostgreSQL (and Pulsar for the second test); the tests run one at a time.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use seedwork_tests::faults::{self, Store};
use seedwork_tests::processes::{default_example_binary, free_port, postgres_schema_url, Service};
use seedwork_tests::system::reserva_del_readme;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const READY: &str = "AlpesPartners is running";
const START: Duration = Duration::from_secs(60);
const DELIVERY: Duration = Duration::from_secs(90);
const RESERVATIONS: usize = 24;

async fn start(binary: &std::path::Path, name: &str, args: Vec<String>) -> Service {
    let mut service = Service::spawn_binary(binary, name, &args, &[("RUST_LOG", "warn")]);
    service.wait_for(READY, START).await;
    service
}

async fn two_notifiers_keep_each_reservations_order(
    binary: std::path::PathBuf,
    broker: Option<String>,
) {
    let _serial = ONE_AT_A_TIME.lock().await;
    let database = postgres_schema_url().await;
    let store = Store::Postgres(database.clone());
    let common = |services: &str| {
        let mut args = vec![
            "--database".to_string(),
            database.clone(),
            "--services".into(),
            services.into(),
            // Approval and payment by hand: the saga would approve the reservations itself.
            "--sagas".into(),
            "off".into(),
        ];
        if let Some(broker) = &broker {
            args.extend(["--broker".into(), broker.clone()]);
        }
        args
    };
    let api_port = free_port();
    let mut api_args = common("api");
    api_args.extend(["--http".into(), format!("127.0.0.1:{api_port}")]);
    let api_process = start(&binary, "api", api_args).await;
    let first = start(&binary, "notificaciones-1", common("notificaciones")).await;
    let second = start(&binary, "notificaciones-2", common("notificaciones")).await;
    let api = format!("http://127.0.0.1:{api_port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");

    // Each reservation: created, approved, paid, one request after the other; all of them at
    // once, so the events of different reservations interleave on the topic.
    let prefix = format!("orden-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let ids: Vec<String> = (0..RESERVATIONS)
        .map(|n| format!("{prefix}-{n:03}"))
        .collect();
    let lifecycles = ids.iter().map(|id| {
        let (http, api, id) = (http.clone(), api.clone(), id.clone());
        async move {
            let created = http
                .post(format!("{api}/vuelos/reserva"))
                .json(&reserva_del_readme(&id))
                .send()
                .await
                .expect("the API answers");
            assert_eq!(created.status(), StatusCode::OK, "create {id}");
            for step in ["aprobar", "pagar"] {
                let response = http
                    .post(format!("{api}/vuelos/reserva/{id}/{step}"))
                    .json(&json!({}))
                    .send()
                    .await
                    .expect("the API answers");
                assert_eq!(response.status(), StatusCode::ACCEPTED, "{step} {id}");
            }
        }
    });
    futures_util::future::join_all(lifecycles).await;

    faults::await_notifications(&http, &api, &ids, 3, DELIVERY).await;
    faults::within(DELIVERY, "the outbox and the subscriptions drain", || {
        let (http, api, store, pulsar) =
            (http.clone(), api.clone(), store.clone(), broker.is_some());
        async move {
            faults::outbox_pending(&http, &api).await == Some(0)
                && if pulsar {
                    faults::pulsar_backlog(&http).await == Some(0)
                } else {
                    store.backlog().await == 0
                }
        }
    })
    .await;
    let mut out_of_order = Vec::new();
    for id in &ids {
        let record = faults::notifications(&http, &api, id).await;
        let kinds: Vec<&str> = record.iter().filter_map(|n| n["tipo"].as_str()).collect();
        let sequence: Vec<u64> = record
            .iter()
            .filter_map(|n| n["secuencia"].as_u64())
            .collect();
        let times: Vec<i64> = record
            .iter()
            .filter_map(|n| n["registrada_en"].as_i64())
            .collect();
        if kinds != ["Creada", "Aprobada", "Pagada"]
            || sequence != [1, 2, 3]
            || times.windows(2).any(|w| w[0] > w[1])
        {
            out_of_order.push((id.clone(), kinds.join(","), times));
        }
    }
    assert!(
        out_of_order.is_empty(),
        "{} of {RESERVATIONS} reservations were not notified created < approved < paid, once \
         each: {out_of_order:?}",
        out_of_order.len()
    );
    let handled = |service: &Service| {
        service
            .lines()
            .iter()
            .filter(|l| l.contains("Mensaje Recibido") && l.contains(&prefix))
            .count()
    };
    let (by_first, by_second) = (handled(&first), handled(&second));
    assert!(
        by_first > 0 && by_second > 0,
        "both notifiers share the work: {by_first} and {by_second} events"
    );
    println!(
        "two notifiers{}: {RESERVATIONS} reservations × 3 events, in order and once each; \
         {by_first} printed by the first, {by_second} by the second",
        if broker.is_some() {
            " (Pulsar)"
        } else {
            " (durable transport)"
        }
    );
    drop(api_process);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/services up"]
async fn two_notifiers_on_the_durable_transport_keep_order() {
    two_notifiers_keep_each_reservations_order(default_example_binary(), None).await;
}

#[cfg(feature = "pulsar")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL and Pulsar: scripts/services up"]
async fn two_notifiers_on_pulsar_keep_order() {
    let url =
        std::env::var("SEEDWORK_PULSAR_URL").unwrap_or_else(|_| "pulsar://127.0.0.1:6650".into());
    two_notifiers_keep_each_reservations_order(
        seedwork_tests::processes::example_binary(),
        Some(url),
    )
    .await;
}
