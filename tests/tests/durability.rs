//! `kill -9` on the reference system under load, on each store and broker it runs on: the
//! example binary takes asynchronous reservation commands from eight concurrent clients, is
//! killed with SIGKILL while they are still sending and its backlog is not empty, and is
//! started again on the same database. Every command it answered 202 must become exactly one
//! reservation, notified of its creation exactly once (the notifier's record, which commits
//! with its inbox entry).
//!
//! | store | broker | test | needs |
//! |---|---|---|---|
//! | SQLite | the durable transport (the default setup) | `accepted_commands_survive_kill_9` | nothing |
//! | PostgreSQL | the durable transport | `…_on_postgres` | PostgreSQL |
//! | SQLite | Pulsar | `…_on_sqlite_and_pulsar` | Pulsar |
//! | PostgreSQL | Pulsar | `…_on_postgres_and_pulsar` | PostgreSQL and Pulsar |
//!
//! The tests run one at a time (they load the machine, and the Pulsar ones share its topics);
//! each uses ids of its own, so leftovers of an earlier run on Pulsar do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use seedwork_tests::faults::{self, Store};
use seedwork_tests::processes::{default_example_binary, free_port, Service};
use seedwork_tests::system::{projections_caught_up, reserva_del_readme};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const READY: &str = "AlpesPartners is running";
const START: Duration = Duration::from_secs(60);
/// Longest the restarted system may take to create and notify everything accepted (a killed
/// consumer's lease on the durable transport, 15 s, is the slowest part).
const RECOVERY: Duration = Duration::from_secs(90);
const CLIENTS: usize = 8;
const PER_CLIENT: usize = 40;
/// Kill once this many commands were accepted (of `CLIENTS * PER_CLIENT`).
const KILL_AFTER: usize = 200;

/// One combination of store and broker.
struct Setup {
    name: &'static str,
    binary: PathBuf,
    /// `--database`; `None`: SQLite under the test's data directory.
    database: Option<String>,
    /// `--broker`; `None`: the durable transport on the database.
    broker: Option<String>,
}

impl Setup {
    fn args(&self, dir: &Path, api: u16, ui: u16) -> Vec<String> {
        let mut args = vec![
            "--data-dir".into(),
            dir.display().to_string(),
            "--http".into(),
            format!("127.0.0.1:{api}"),
            "--ui".into(),
            format!("127.0.0.1:{ui}"),
        ];
        // The saga's own traffic is not what this test counts (tests/tests/saga.rs crashes
        // a saga).
        args.extend(["--sagas".into(), "off".into()]);
        if let Some(database) = &self.database {
            args.extend(["--database".into(), database.clone()]);
        }
        if let Some(broker) = &self.broker {
            args.extend(["--broker".into(), broker.clone()]);
        }
        args
    }

    fn store(&self, dir: &Path) -> Store {
        match &self.database {
            Some(url) => Store::Postgres(url.clone()),
            None => Store::Sqlite(dir.join("alpespartners.db")),
        }
    }

    async fn start(&self, dir: &Path, api: u16, ui: u16, name: &str) -> Service {
        let mut service = Service::spawn_binary(
            &self.binary,
            name,
            &self.args(dir, api, ui),
            &[("RUST_LOG", "warn")],
        );
        service.wait_for(READY, START).await;
        service
    }

    /// Whether nothing is left to do: the outbox is empty and the command and notification
    /// subscriptions have acknowledged everything.
    async fn quiet(&self, http: &reqwest::Client, api: &str, store: &Store) -> bool {
        if faults::outbox_pending(http, api).await != Some(0) {
            return false;
        }
        match self.broker {
            None => store.backlog().await == 0,
            Some(_) => faults::pulsar_backlog(http).await == Some(0),
        }
    }
}

/// Every reservation id the API lists, page by page, with how often each appears.
async fn listed(http: &reqwest::Client, api: &str) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{api}/vuelos/reservas?limit=500");
        if let Some(cursor) = &after {
            url.push_str(&format!("&after={cursor}"));
        }
        let response = http.get(&url).send().await.expect("list");
        assert_eq!(response.status(), StatusCode::OK);
        let next = response
            .headers()
            .get("x-next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let page: Vec<Value> = response.json().await.expect("a JSON list");
        for reserva in page {
            if let Some(id) = reserva["id"].as_str() {
                *seen.entry(id.to_string()).or_insert(0) += 1;
            }
        }
        match next {
            Some(cursor) => after = Some(cursor),
            None => return seen,
        }
    }
}

/// The sum of the daily totals the API answers (`ProyeccionReservasTotales`).
async fn daily_total(http: &reqwest::Client, api: &str) -> u64 {
    let response = http
        .get(format!("{api}/vuelos/reservas/totales?limit=500"))
        .send()
        .await
        .expect("totals");
    assert_eq!(response.status(), StatusCode::OK);
    let days: Vec<Value> = response.json().await.expect("a JSON list");
    days.iter().filter_map(|day| day["total"].as_u64()).sum()
}

async fn kill_9_under_load(setup: Setup) {
    let _serial = ONE_AT_A_TIME.lock().await;
    let prefix = format!(
        "durable-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let store = setup.store(dir.path());
    let (api_port, ui_port) = (free_port(), free_port());
    let api = format!("http://127.0.0.1:{api_port}");
    let mut first = setup.start(dir.path(), api_port, ui_port, "first").await;

    let accepted = Arc::new(Mutex::new(BTreeSet::new()));
    let sent = Arc::new(Mutex::new(BTreeSet::new()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (http, api) = (http.clone(), api.clone());
        let (accepted, sent) = (Arc::clone(&accepted), Arc::clone(&sent));
        let prefix = prefix.clone();
        clients.push(tokio::spawn(async move {
            for n in 0..PER_CLIENT {
                let id = format!("{prefix}-{client}-{n:03}");
                sent.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.clone());
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
                    // The process is gone: this client stops.
                    Err(_) => return,
                    Ok(response) => panic!("{id}: {}", response.status()),
                }
            }
        }));
    }

    // Kill while the clients are still sending.
    let deadline = tokio::time::Instant::now() + START;
    while accepted.lock().unwrap_or_else(|e| e.into_inner()).len() < KILL_AFTER {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{KILL_AFTER} commands were not accepted in time"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill();
    for client in clients {
        client.await.expect("a client task");
    }
    let accepted = accepted.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let sent = sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let at_kill = store.reservations(&prefix).await;
    let in_flight = accepted.difference(&at_kill).count();
    println!(
        "kill -9 [{}]: {} sent, {} accepted (202), {} created before the kill, {in_flight} accepted \
         but not yet created",
        setup.name,
        sent.len(),
        accepted.len(),
        at_kill.len()
    );
    assert!(
        accepted.len() >= KILL_AFTER,
        "the kill came after {KILL_AFTER} acceptances"
    );
    assert!(
        in_flight > 0,
        "the kill found no backlog, so it tested nothing; created: {}",
        at_kill.len()
    );

    let second = setup.start(dir.path(), api_port, ui_port, "second").await;
    let deadline = tokio::time::Instant::now() + RECOVERY;
    let mut missing: Vec<String> = accepted.iter().cloned().collect();
    while !missing.is_empty() {
        let mut still = Vec::new();
        for id in missing {
            let response = http
                .get(format!("{api}/vuelos/reserva/{id}"))
                .send()
                .await
                .expect("the restarted API answers");
            match response.status() {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND => still.push(id),
                other => panic!("{id}: {other}"),
            }
        }
        missing = still;
        assert!(
            missing.is_empty() || tokio::time::Instant::now() < deadline,
            "{} of {} accepted reservations never appeared after the restart (in flight at the \
             kill: {in_flight}); e.g. {:?}",
            missing.len(),
            accepted.len(),
            missing.iter().take(5).collect::<Vec<_>>()
        );
        if !missing.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // The list reads a projection of the event store, which the kill may have cut mid-batch.
    projections_caught_up(&http, &api, RECOVERY).await;
    let listed = listed(&http, &api).await;
    let ours: BTreeMap<&String, &usize> = listed
        .iter()
        .filter(|(id, _)| id.starts_with(&prefix))
        .collect();
    let twice: Vec<_> = ours.iter().filter(|(_, n)| ***n > 1).collect();
    assert!(twice.is_empty(), "listed more than once: {twice:?}");
    for id in &accepted {
        assert!(ours.contains_key(id), "{id} was accepted but is not listed");
    }
    let unexpected: Vec<_> = ours.keys().filter(|id| !sent.contains(**id)).collect();
    assert!(unexpected.is_empty(), "never sent: {unexpected:?}");
    if setup.database.is_none() {
        // A fresh store: the daily totals count every stored reservation once, no more (an
        // event applied twice across the kill would count twice).
        let stored = store.reservations("").await.len();
        assert_eq!(daily_total(&http, &api).await, stored as u64, "{listed:?}");
        assert_eq!(listed.len(), stored);
    }

    // Every stored reservation (those accepted, and those committed whose 202 the kill cut
    // off) is notified of its creation; then, once nothing is left in the outbox or on the
    // subscriptions, exactly once.
    let stored: Vec<String> = ours.keys().map(|id| (*id).clone()).collect();
    faults::await_notifications(&http, &api, &stored, 1, RECOVERY).await;
    faults::within(RECOVERY, "the outbox and the subscriptions drain", || {
        setup.quiet(&http, &api, &store)
    })
    .await;
    let recorded = faults::await_notifications(&http, &api, &stored, 1, RECOVERY).await;
    let wrong: Vec<_> = recorded
        .iter()
        .filter(|(_, kinds)| kinds.as_slice() != ["Creada"])
        .collect();
    assert!(
        wrong.is_empty(),
        "{} reservations are not notified of their creation exactly once; e.g. {:?}\n{}",
        wrong.len(),
        wrong.iter().take(5).collect::<Vec<_>>(),
        second.lines().join("\n")
    );
    println!(
        "recovered [{}]: all {} accepted reservations exist once ({} in flight at the kill); {} \
         stored in all ({} committed whose 202 the kill cut off); each notified of its creation \
         exactly once",
        setup.name,
        accepted.len(),
        in_flight,
        ours.len(),
        ours.len() - accepted.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accepted_commands_survive_kill_9() {
    kill_9_under_load(Setup {
        name: "SQLite, durable transport",
        binary: default_example_binary(),
        database: None,
        broker: None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/services up"]
async fn accepted_commands_survive_kill_9_on_postgres() {
    kill_9_under_load(Setup {
        name: "PostgreSQL, durable transport",
        binary: default_example_binary(),
        database: Some(seedwork_tests::processes::postgres_schema_url().await),
        broker: None,
    })
    .await;
}

#[cfg(feature = "pulsar")]
fn pulsar_url() -> String {
    std::env::var("SEEDWORK_PULSAR_URL").unwrap_or_else(|_| "pulsar://127.0.0.1:6650".into())
}

#[cfg(feature = "pulsar")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs Pulsar: scripts/services up"]
async fn accepted_commands_survive_kill_9_on_sqlite_and_pulsar() {
    kill_9_under_load(Setup {
        name: "SQLite, Pulsar",
        binary: seedwork_tests::processes::example_binary(),
        database: None,
        broker: Some(pulsar_url()),
    })
    .await;
}

#[cfg(feature = "pulsar")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL and Pulsar: scripts/services up"]
async fn accepted_commands_survive_kill_9_on_postgres_and_pulsar() {
    kill_9_under_load(Setup {
        name: "PostgreSQL, Pulsar",
        binary: seedwork_tests::processes::example_binary(),
        database: Some(seedwork_tests::processes::postgres_schema_url().await),
        broker: Some(pulsar_url()),
    })
    .await;
}
