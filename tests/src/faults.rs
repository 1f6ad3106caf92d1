//! What the fault tests observe the reference system with, from outside its processes: the
//! store's tables (reservations, the durable transport's backlog and dead letters), the API's
//! record of sent notifications and `/health`, Pulsar's subscription statistics, and the
//! shared services stopped and started again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use seedwork_sqlx::sqlx;

/// The subscriptions whose work the fault tests wait for: the API's command consumer and the
/// notifier (the UI's subscriptions are best effort and not waited for).
pub const SUBSCRIPTIONS: [&str; 2] = [
    alpespartners::vuelos::infraestructura::consumidores::SUSCRIPCION_COMANDOS,
    alpespartners::notificaciones::SUSCRIPCION,
];

/// The database of a system under test, read directly.
#[derive(Debug, Clone)]
pub enum Store {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (scoped to the test's schema).
    Postgres(String),
}

impl Store {
    async fn scalar(&self, sql: &str, arg: &str) -> i64 {
        match self {
            Store::Sqlite(path) => {
                let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .expect("the data file opens");
                let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.replace("$1", "?")))
                    .bind(arg)
                    .fetch_one(&pool)
                    .await
                    .expect("a count");
                pool.close().await;
                n
            }
            Store::Postgres(url) => {
                let pool = sqlx::PgPool::connect(url)
                    .await
                    .expect("PostgreSQL answers");
                let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
                    .bind(arg)
                    .fetch_one(&pool)
                    .await
                    .expect("a count");
                pool.close().await;
                n
            }
        }
    }

    /// The ids of the stored reservations that start with `prefix`: the event-sourced
    /// reservations' streams.
    pub async fn reservations(&self, prefix: &str) -> BTreeSet<String> {
        let sql = "SELECT DISTINCT stream_id FROM seedwork_events \
                   WHERE stream_type = 'Reserva' AND stream_id LIKE $1";
        let pattern = format!("{prefix}%");
        let ids: Vec<(String,)> = match self {
            Store::Sqlite(path) => {
                let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .expect("the data file opens");
                let ids = sqlx::query_as(sqlx::AssertSqlSafe(sql.replace("$1", "?")))
                    .bind(pattern)
                    .fetch_all(&pool)
                    .await
                    .expect("the reservations read");
                pool.close().await;
                ids
            }
            Store::Postgres(url) => {
                let pool = sqlx::PgPool::connect(url)
                    .await
                    .expect("PostgreSQL answers");
                let ids = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
                    .bind(pattern)
                    .fetch_all(&pool)
                    .await
                    .expect("the reservations read");
                pool.close().await;
                ids
            }
        };
        ids.into_iter().map(|(id,)| id).collect()
    }

    /// The saga instances whose conversation starts with `prefix` that have ended
    /// (completed or compensated).
    pub async fn ended_sagas(&self, prefix: &str) -> i64 {
        self.scalar(
            "SELECT COUNT(*) FROM seedwork_sagas WHERE correlation_id LIKE $1 \
             AND status IN ('completed', 'compensated')",
            &format!("{prefix}%"),
        )
        .await
    }

    /// Messages on any dead-letter topic of the durable transport.
    pub async fn dead_letters(&self) -> i64 {
        self.scalar(
            "SELECT COUNT(*) FROM seedwork_topic_log WHERE topic LIKE $1",
            "%-DLQ",
        )
        .await
    }

    /// Messages [`SUBSCRIPTIONS`] have not acknowledged yet on the durable transport.
    pub async fn backlog(&self) -> i64 {
        let mut total = 0;
        for name in SUBSCRIPTIONS {
            total += self
                .scalar(
                    "SELECT COUNT(*) FROM seedwork_subscription_messages m \
                     JOIN seedwork_subscriptions s ON s.id = m.subscription_id WHERE s.name = $1",
                    name,
                )
                .await;
        }
        total
    }
}

/// `GET /health`: its status code and body; `None` when the API does not answer.
pub async fn health(http: &reqwest::Client, api: &str) -> Option<(StatusCode, Value)> {
    let response = http.get(format!("{api}/health")).send().await.ok()?;
    let status = response.status();
    Some((status, response.json().await.unwrap_or(Value::Null)))
}

/// The outbox's backlog as `/health` reports it (`None` when it does not).
pub async fn outbox_pending(http: &reqwest::Client, api: &str) -> Option<u64> {
    health(http, api).await?.1["parts"]["outbox"]["pending"].as_u64()
}

/// The notifications recorded for `id_reserva` (`GET /notificaciones`), oldest first. The
/// tests' ids need no escaping in a query string.
pub async fn notifications(http: &reqwest::Client, api: &str, id_reserva: &str) -> Vec<Value> {
    let response = http
        .get(format!("{api}/notificaciones?id_reserva={id_reserva}"))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(response.status(), StatusCode::OK, "GET /notificaciones");
    response.json().await.expect("a JSON list")
}

/// The recorded notification kinds (`tipo`) of `id_reserva`, in recorded order.
pub async fn notified_kinds(http: &reqwest::Client, api: &str, id_reserva: &str) -> Vec<String> {
    notifications(http, api, id_reserva)
        .await
        .iter()
        .filter_map(|n| n["tipo"].as_str().map(str::to_string))
        .collect()
}

/// Waits, for at most `limit`, until every id in `ids` has at least `kinds.len()` recorded
/// notifications; then returns each id's recorded kinds (the caller asserts on them).
pub async fn await_notifications(
    http: &reqwest::Client,
    api: &str,
    ids: impl IntoIterator<Item = &String>,
    kinds: usize,
    limit: Duration,
) -> BTreeMap<String, Vec<String>> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut recorded = BTreeMap::new();
    let mut waiting: Vec<String> = ids.into_iter().cloned().collect();
    loop {
        let mut still = Vec::new();
        for id in waiting {
            let got = notified_kinds(http, api, &id).await;
            if got.len() < kinds {
                still.push(id.clone());
            }
            recorded.insert(id, got);
        }
        waiting = still;
        if waiting.is_empty() {
            return recorded;
        }
        if tokio::time::Instant::now() >= deadline {
            let short: Vec<_> = waiting
                .iter()
                .take(5)
                .map(|id| (id, &recorded[id]))
                .collect();
            panic!(
                "{} reservations lack notifications after {limit:?}; e.g. {short:?}",
                waiting.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `probe` every 100 ms until it returns true, for at most `limit`; panics with `what`.
pub async fn within<F, Fut>(limit: Duration, what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !probe().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The admin API of the Pulsar under test (`SEEDWORK_PULSAR_ADMIN`, else the local one).
pub fn pulsar_admin() -> String {
    std::env::var("SEEDWORK_PULSAR_ADMIN").unwrap_or_else(|_| "http://127.0.0.1:8080".into())
}

/// What [`SUBSCRIPTIONS`] still hold on Pulsar (backlog plus unacknowledged), summed over the
/// system's two topics; `None` when the admin API does not answer.
pub async fn pulsar_backlog(http: &reqwest::Client) -> Option<u64> {
    let mut total = 0;
    for topic in ["ciclo-reserva", "comandos-reserva"] {
        let stats: Value = http
            .get(format!(
                "{}/admin/v2/persistent/public/default/{topic}/stats",
                pulsar_admin()
            ))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        for name in SUBSCRIPTIONS {
            let sub = &stats["subscriptions"][name];
            total += sub["msgBacklog"].as_u64().unwrap_or(0);
            total += sub["unackedMessages"].as_u64().unwrap_or(0);
        }
    }
    Some(total)
}

/// Runs `scripts/services ACTION SERVICE` (stopping or starting a shared service).
pub fn service(action: &str, name: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/services");
    let status = Command::new(script)
        .args([action, name])
        .stdout(Stdio::null())
        .status()
        .expect("scripts/services runs");
    assert!(status.success(), "scripts/services {action} {name} failed");
}

/// Starts a shared service again when dropped, so a test that stopped it leaves it running
/// even when it fails half-way.
pub struct Restart(pub &'static str);

impl Drop for Restart {
    fn drop(&mut self) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/services");
        let _ = Command::new(script)
            .args(["up", self.0])
            .stdout(Stdio::null())
            .status();
    }
}
