//! `/health` on a running system: 503 naming the store while its database cannot be written,
//! 200 with every part up once it can again, and nothing lost meanwhile.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{Connection, Executor};

use alpespartners::system::{BrokerChoice, Database};
use seedwork_tests::system::{reserva_del_readme, start_on, Running};

const WAIT: Duration = Duration::from_secs(30);

async fn health(r: &Running) -> (StatusCode, Value) {
    let response = r
        .http
        .get(format!("{}/health", r.api))
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

/// A connection of another process's kind that takes the database's write lock and keeps it
/// until it rolls back.
async fn hold_the_write_lock(path: &std::path::Path) -> sqlx::SqliteConnection {
    let mut intruder = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("a second connection");
    intruder
        .execute("BEGIN EXCLUSIVE")
        .await
        .expect("the write lock");
    intruder
}

/// Asks `/health` until `want` holds of its answer, within [`WAIT`].
async fn health_until(r: &Running, want: impl Fn(StatusCode, &Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = health(r).await;
        if want(status, &body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/health never got there; last: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_naming_the_store_while_it_is_locked_and_200_after() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("alpes.db");
    let running = start_on(
        Database::Sqlite(path.display().to_string()),
        BrokerChoice::Database,
    )
    .await;
    let up = health_until(&running, |status, body| {
        status == StatusCode::OK && body["status"] == "up"
    })
    .await;
    assert_eq!(up["parts"]["store"]["status"], "up", "{up}");
    assert_eq!(
        up["parts"]["transport:retention"]["status"], "up",
        "the transport's log is purged by a supervised task: {up}"
    );

    // Another process takes SQLite's write lock and keeps it.
    let mut intruder = hold_the_write_lock(&path).await;
    let down = health_until(&running, |status, _| {
        status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    assert_eq!(down["status"], "down", "{down}");
    assert_eq!(down["parts"]["store"]["status"], "down", "{down}");
    assert!(
        down["parts"]["store"]["detail"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "the store says why: {down}"
    );
    // A reservation accepted while the lock is held waits, and is not lost.
    let id = format!("locked-{}", uuid::Uuid::new_v4().simple());
    let request = running
        .http
        .post(format!("{}/vuelos/reserva-comando", running.api))
        .json(&reserva_del_readme(&id))
        .send();
    // Released after the request has had time to reach the locked store; either outcome is
    // checked below, so the exact moment does not decide the verdict.
    let release = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        intruder.execute("COMMIT").await.expect("release the lock");
    };
    let (response, ()) = tokio::join!(request, release);
    let status = response.expect("request").status();
    assert!(
        status == StatusCode::ACCEPTED || status == StatusCode::SERVICE_UNAVAILABLE,
        "a locked store answers 202 (after waiting) or 503, never 500: {status}"
    );

    let back = health_until(&running, |status, body| {
        status == StatusCode::OK && body["status"] == "up"
    })
    .await;
    for (name, part) in back["parts"].as_object().expect("parts") {
        assert_eq!(part["status"], "up", "{name}: {back}");
    }
    if status == StatusCode::ACCEPTED {
        let deadline = tokio::time::Instant::now() + WAIT;
        while running.buzon.de(&id).is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the reservation accepted during the lock was never notified"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(running.buzon.de(&id).len(), 1);
    }
    running.system.shutdown().await;
}

/// The store's probe asks for SQLite's write lock, whatever the rest of the process is doing:
/// with no loop of its own running, a database another process keeps locked is reported down.
/// Beside it, the `writer` part counts the write transactions (the probe's among them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_probe_asks_for_the_write_lock_and_the_writer_is_counted() {
    use std::sync::Arc;

    use alpespartners::api::health::HealthCheck;
    use seedwork::supervision::Health;
    use seedwork_sqlx::SqliteStore;

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("probe.db");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("open");
    let check = HealthCheck::new(Health::default())
        .store(Arc::new(store.clone()))
        .writer({
            let store = store.clone();
            Arc::new(move || store.writer_stats())
        });
    let up = check.check().await;
    assert_eq!(up.status, "up", "{up:?}");
    let writer = &up.parts["writer"];
    // Read after the probes: this check's own probe is counted.
    assert_eq!((writer.status, writer.turns), ("up", Some(1)), "{up:?}");

    let mut intruder = hold_the_write_lock(&path).await;
    let down = check.check().await;
    assert_eq!(down.parts["store"].status, "down", "{down:?}");
    intruder.execute("ROLLBACK").await.expect("release");

    let again = check.check().await;
    assert_eq!(again.status, "up", "{again:?}");
    assert_eq!(
        again.parts["writer"].turns,
        Some(3),
        "each probe took a turn, the one the lock held up too: {again:?}"
    );
}
