//! PostgreSQL stopped and started while the reference system consumes: one process on
//! PostgreSQL with the durable transport (the transport lives in the same database, so the
//! outage takes the store and the broker away at once) takes a stream of asynchronous
//! reservation commands; `scripts/services down postgres` and `up postgres` mid-stream.
//!
//! The consumers must wait the outage out instead of counting it as failed deliveries: nothing
//! is dead-lettered, every accepted reservation exists and is notified of its creation exactly
//! once, and `/health` answers 503 during the outage and 200 after it.
//!
//! A test binary of its own with one test: it stops the shared PostgreSQL, which no other test
//! may see (cargo runs test binaries one after another). A drop guard starts it again even when
//! the test fails.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;

use seedwork_tests::faults::{self, Restart, Store};
use seedwork_tests::processes::{default_example_binary, free_port, postgres_schema_url, Service};
use seedwork_tests::system::reserva_del_readme;

const READY: &str = "AlpesPartners is running";
const START: Duration = Duration::from_secs(60);
const RECOVERY: Duration = Duration::from_secs(90);
/// Commands accepted before the outage, and again after it, before the stream stops.
const BEFORE: usize = 30;
const AFTER: usize = 30;
/// Commands refused while the database is down before it is started again.
const REFUSED: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL (and Pulsar, with the pulsar feature): scripts/services up"]
async fn a_postgres_restart_dead_letters_nothing_and_loses_nothing() {
    outage(default_example_binary(), None).await;
    // With Pulsar as the broker, the broker stays up while the database is down: a consumer
    // that counted the outage as failed deliveries would nack, and Pulsar would dead-letter.
    #[cfg(feature = "pulsar")]
    outage(
        seedwork_tests::processes::example_binary(),
        Some(
            std::env::var("SEEDWORK_PULSAR_URL")
                .unwrap_or_else(|_| "pulsar://127.0.0.1:6650".into()),
        ),
    )
    .await;
}

/// What Pulsar's dead-letter topics of the system's subscriptions have received so far (a
/// topic that does not exist has received nothing).
async fn pulsar_dead_letters(http: &reqwest::Client) -> u64 {
    let mut total = 0;
    for topic in [
        "comandos-reserva-aeroalpes-sub-comandos-DLQ",
        "ciclo-reserva-sub-notificacion-eventos-reservas-DLQ",
    ] {
        let stats: serde_json::Value = match http
            .get(format!(
                "{}/admin/v2/persistent/public/default/{topic}/stats",
                faults::pulsar_admin()
            ))
            .send()
            .await
        {
            Ok(response) if response.status() == StatusCode::OK => {
                response.json().await.expect("JSON stats")
            }
            Ok(response) if response.status() == StatusCode::NOT_FOUND => continue,
            other => panic!("Pulsar's admin API: {other:?}"),
        };
        total += stats["msgInCounter"].as_u64().unwrap_or(0);
    }
    total
}

/// The scenario on PostgreSQL with the durable transport (`broker` `None`) or Pulsar.
async fn outage(binary: std::path::PathBuf, broker: Option<String>) {
    let database = postgres_schema_url().await;
    let store = Store::Postgres(database.clone());
    let prefix = format!("outage-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let (api_port, ui_port) = (free_port(), free_port());
    let api = format!("http://127.0.0.1:{api_port}");
    let mut args = vec![
        "--database".into(),
        database.clone(),
        "--http".into(),
        format!("127.0.0.1:{api_port}"),
        "--ui".into(),
        format!("127.0.0.1:{ui_port}"),
    ];
    if let Some(broker) = &broker {
        args.extend(["--broker".into(), broker.clone()]);
    }
    args.extend(["--sagas".into(), "off".into()]);
    let mut system = Service::spawn_binary(&binary, "system", &args, &[("RUST_LOG", "warn")]);
    system.wait_for(READY, START).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a client");
    let dead_before = match broker {
        Some(_) => pulsar_dead_letters(&http).await,
        None => 0,
    };

    // One client sends commands one after another until told to stop; 202s are accepted, and
    // anything else (the store is down) is only counted.
    let accepted = Arc::new(Mutex::new(BTreeSet::new()));
    let refused = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (http, api, prefix) = (http.clone(), api.clone(), prefix.clone());
        let (accepted, refused, stop) = (accepted.clone(), refused.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let id = format!("{prefix}-{n:05}");
                n += 1;
                let answer = http
                    .post(format!("{api}/vuelos/reserva-comando"))
                    .json(&reserva_del_readme(&id))
                    .send()
                    .await;
                match answer {
                    Ok(response) if response.status() == StatusCode::ACCEPTED => {
                        accepted
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(id);
                    }
                    _ => {
                        refused.fetch_add(1, Ordering::SeqCst);
                        // Pacing while the store is down, not a verdict.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            n
        })
    };
    let count =
        |set: &Arc<Mutex<BTreeSet<String>>>| set.lock().unwrap_or_else(|e| e.into_inner()).len();

    faults::within(START, "commands are accepted before the outage", || {
        let n = count(&accepted);
        async move { n >= BEFORE }
    })
    .await;
    let restart = Restart("postgres");
    faults::service("down", "postgres");
    let before = count(&accepted);
    // Held down until /health says so and the stream of commands has run into the outage a
    // number of times (so the consumers, polling the same database, did too).
    faults::within(
        Duration::from_secs(30),
        "/health answers 503 and commands are refused during the outage",
        || {
            let (http, api, refused) = (http.clone(), api.clone(), refused.clone());
            async move {
                matches!(
                    faults::health(&http, &api).await,
                    Some((StatusCode::SERVICE_UNAVAILABLE, _))
                ) && refused.load(Ordering::SeqCst) >= REFUSED
            }
        },
    )
    .await;
    let refused_at_up = refused.load(Ordering::SeqCst);
    faults::service("up", "postgres");
    drop(restart);
    faults::within(RECOVERY, "/health answers 200 after the outage", || {
        let (http, api) = (http.clone(), api.clone());
        async move { matches!(faults::health(&http, &api).await, Some((StatusCode::OK, _))) }
    })
    .await;
    let resumed = count(&accepted);
    faults::within(RECOVERY, "commands are accepted after the outage", || {
        let n = count(&accepted);
        async move { n >= resumed + AFTER }
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let sent = sender.await.expect("the sender");
    let accepted = accepted.lock().unwrap_or_else(|e| e.into_inner()).clone();

    // Every accepted command becomes a reservation, notified of its creation exactly once once
    // nothing is left to do; nothing went to a dead-letter topic.
    faults::within(RECOVERY, "every accepted reservation is stored", || {
        let (store, prefix, accepted) = (store.clone(), prefix.clone(), accepted.clone());
        async move { store.reservations(&prefix).await.is_superset(&accepted) }
    })
    .await;
    let stored = store.reservations(&prefix).await;
    faults::await_notifications(&http, &api, &stored, 1, RECOVERY).await;
    // Twice the recovery bound: a consumer that lost its registration during the outage holds
    // its leased rows until its lease runs out.
    let drain = 2 * RECOVERY;
    let deadline = tokio::time::Instant::now() + drain;
    loop {
        let outbox = faults::outbox_pending(&http, &api).await;
        let backlog = if broker.is_some() {
            faults::pulsar_backlog(&http).await.map(|n| n as i64)
        } else {
            Some(store.backlog().await)
        };
        if outbox == Some(0) && backlog == Some(0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outbox and the subscriptions did not drain within {drain:?}: outbox \
             {outbox:?}, subscriptions {backlog:?}; health {:?}\n{}",
            faults::health(&http, &api).await,
            system.lines_with("WARN").join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recorded = faults::await_notifications(&http, &api, &stored, 1, RECOVERY).await;
    let wrong: Vec<_> = recorded
        .iter()
        .filter(|(_, kinds)| kinds.as_slice() != ["Creada"])
        .collect();
    assert!(
        wrong.is_empty(),
        "{} reservations are not notified of their creation exactly once; e.g. {:?}",
        wrong.len(),
        wrong.iter().take(5).collect::<Vec<_>>()
    );
    let dead = match broker {
        Some(_) => pulsar_dead_letters(&http).await.saturating_sub(dead_before),
        None => u64::try_from(store.dead_letters().await).unwrap_or(u64::MAX),
    };
    assert_eq!(
        dead,
        0,
        "nothing is dead-lettered by an outage:\n{}",
        system.lines_with("dead-letter").join("\n")
    );
    println!(
        "postgres outage [{}]: {sent} sent, {} accepted ({before} before the outage), {refused_at_up} \
         refused while it was down, {} stored, each notified once, 0 dead letters",
        if broker.is_some() { "Pulsar" } else { "durable transport" },
        accepted.len(),
        stored.len()
    );
}
