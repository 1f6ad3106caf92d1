//! `kill -9` on the reference system with its default broker: the example binary (as
//! `cargo run --example alpespartners` builds it) on a temporary SQLite data directory takes
//! asynchronous reservation commands from eight concurrent clients, is killed with SIGKILL while
//! they are still sending and its backlog is not empty, and is started again on the same
//! directory. Every command it answered 202 must become exactly one reservation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use seedwork_sqlx::sqlx;
use seedwork_tests::processes::{default_example_binary, free_port, Service};
use seedwork_tests::system::reserva_del_readme;

const READY: &str = "AlpesPartners is running";
const START: Duration = Duration::from_secs(60);
const RECOVERY: Duration = Duration::from_secs(60);
const CLIENTS: usize = 8;
const PER_CLIENT: usize = 40;
/// Kill once this many commands were accepted (of `CLIENTS * PER_CLIENT`).
const KILL_AFTER: usize = 200;
const PREFIX: &str = "durable";

fn args(dir: &Path, api: u16, ui: u16) -> Vec<String> {
    vec![
        "--data-dir".into(),
        dir.display().to_string(),
        "--http".into(),
        format!("127.0.0.1:{api}"),
        "--ui".into(),
        format!("127.0.0.1:{ui}"),
    ]
}

async fn start(dir: &Path, api: u16, ui: u16, name: &str) -> Service {
    let mut service = Service::spawn_binary(
        &default_example_binary(),
        name,
        &args(dir, api, ui),
        &[("RUST_LOG", "warn")],
    );
    service.wait_for(READY, START).await;
    service
}

/// The reservations in the store whose id starts with [`PREFIX`], read from the file while no
/// process runs on it.
async fn stored_ids(database: &Path) -> BTreeSet<String> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", database.display()))
        .await
        .expect("the data file opens");
    let ids: Vec<(String,)> = sqlx::query_as("SELECT id FROM seedwork_aggregates WHERE id LIKE ?")
        .bind(format!("{PREFIX}-%"))
        .fetch_all(&pool)
        .await
        .expect("the reservations read");
    pool.close().await;
    ids.into_iter().map(|(id,)| id).collect()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accepted_commands_survive_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (api_port, ui_port) = (free_port(), free_port());
    let api = format!("http://127.0.0.1:{api_port}");
    let mut first = start(dir.path(), api_port, ui_port, "first").await;

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
        clients.push(tokio::spawn(async move {
            for n in 0..PER_CLIENT {
                let id = format!("{PREFIX}-{client}-{n:03}");
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
    let database = dir.path().join("alpespartners.db");
    let at_kill = stored_ids(&database).await;
    let in_flight = accepted.difference(&at_kill).count();
    println!(
        "kill -9: {} sent, {} accepted (202), {} created before the kill, {in_flight} accepted \
         but not yet created",
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

    let _second = start(dir.path(), api_port, ui_port, "second").await;
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

    let listed = listed(&http, &api).await;
    let ours: BTreeMap<&String, &usize> = listed
        .iter()
        .filter(|(id, _)| id.starts_with(PREFIX))
        .collect();
    let twice: Vec<_> = ours.iter().filter(|(_, n)| ***n > 1).collect();
    assert!(twice.is_empty(), "listed more than once: {twice:?}");
    for id in &accepted {
        assert!(ours.contains_key(id), "{id} was accepted but is not listed");
    }
    let unexpected: Vec<_> = ours.keys().filter(|id| !sent.contains(**id)).collect();
    assert!(unexpected.is_empty(), "never sent: {unexpected:?}");
    println!(
        "recovered: all {} accepted reservations exist once ({} in flight at the kill); {} \
         stored in all ({} committed whose 202 the kill cut off)",
        accepted.len(),
        in_flight,
        ours.len(),
        ours.len() - accepted.len()
    );
}
