//! Saga step throughput: how many reservation sagas (each four coordinator steps — the start and
//! three replies — and six service steps) the reference system takes to their end per second,
//! through its store and transport.
//!
//! The system runs in this process with every service, on SQLite and its durable transport by
//! default (`BENCH_DATABASE=postgres://…` for PostgreSQL). `BENCH_CLIENTS` (default 8) clients
//! request `BENCH_SAGAS` (default 400) reservations through `POST /vuelos/reserva-comando`
//! at once; the clock stops when the store holds every saga completed.
//!
//! ```text
//! cargo bench -p seedwork-tests --bench saga_throughput
//! BENCH_DATABASE=postgres://seedwork:seedwork@127.0.0.1:5432/seedwork cargo bench -p seedwork-tests --bench saga_throughput
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use alpespartners::notificaciones::{EnviadorCorreo, Notificacion};
use alpespartners::system::{self, BrokerChoice, Config, Database, Services};
use seedwork::saga::{SagaStatus, SagaStore};
use seedwork_tests::system::reserva_del_readme;

/// Sends nothing: the mail is not what is measured.
struct Silencio;

#[seedwork::async_trait]
impl EnviadorCorreo for Silencio {
    async fn enviar(&self, _: &Notificacion) -> seedwork::Result<()> {
        Ok(())
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let sagas = env_number("BENCH_SAGAS", 400);
    let clients = env_number("BENCH_CLIENTS", 8).max(1);
    let dir = tempfile::tempdir().expect("a temp dir");
    let database = match std::env::var("BENCH_DATABASE") {
        Ok(url) if !url.is_empty() => Database::Postgres(url),
        _ => Database::Sqlite(dir.path().join("bench.db").display().to_string()),
    };
    let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let config = Config {
        http: any_port,
        ui: any_port,
        database: database.clone(),
        correo: Arc::new(Silencio),
        relay_poll: Duration::from_millis(200),
        broker: BrokerChoice::Database,
        services: Services::ALL,
        sagas: true,
        plazo_saga: Duration::from_secs(120),
        sondeo_plazos: Duration::from_millis(500),
        sondeo_proyecciones: Duration::from_millis(100),
        reconstruir_proyecciones: false,
    };
    let running = system::start(config).await.expect("the system starts");
    let api = format!(
        "http://{}/vuelos/reserva-comando",
        running.http_addr.expect("the API runs")
    );
    let store = running
        .bus
        .resources()
        .get::<dyn SagaStore>()
        .expect("the saga store is provided");
    let http = reqwest::Client::new();
    let prefix = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let ids: Vec<String> = (0..sagas).map(|n| format!("{prefix}-{n:05}")).collect();

    let started = Instant::now();
    let mut tasks = Vec::new();
    for chunk in ids.chunks(sagas.div_ceil(clients)) {
        let (http, api, chunk) = (http.clone(), api.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for id in chunk {
                let response = http
                    .post(&api)
                    .header("x-correlation-id", &id)
                    .json(&reserva_del_readme(&id))
                    .send()
                    .await
                    .expect("the API answers");
                assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
            }
        }));
    }
    for task in tasks {
        task.await.expect("a client");
    }
    let accepted = started.elapsed();

    let limit = Instant::now() + Duration::from_secs(600);
    let mut durations = Vec::with_capacity(sagas);
    let mut pending: Vec<&String> = ids.iter().collect();
    while !pending.is_empty() {
        assert!(
            Instant::now() < limit,
            "{} sagas did not end",
            pending.len()
        );
        let mut still = Vec::new();
        for id in pending {
            match store.get("reservas", id).await.expect("the store answers") {
                Some(record) if record.status == SagaStatus::Completed => {
                    let first = record.log.first().map(|e| e.at).unwrap_or_default();
                    let last = record.log.last().map(|e| e.at).unwrap_or_default();
                    durations.push(last - first);
                }
                Some(record) if record.status.is_terminal() => {
                    panic!("saga {id} ended {}: {:?}", record.status, record.failure)
                }
                _ => still.push(id),
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let all = started.elapsed();
    durations.sort_unstable();
    let per_second = sagas as f64 / all.as_secs_f64();
    let store_name = match database {
        Database::Postgres(_) => "PostgreSQL",
        _ => "SQLite",
    };
    println!(
        "saga_throughput on {store_name} + durable transport: {sagas} sagas, {clients} clients"
    );
    println!(
        "  accepted in {:.2} s; all completed in {:.2} s",
        accepted.as_secs_f64(),
        all.as_secs_f64()
    );
    println!(
        "  {per_second:.0} sagas/s = {:.0} coordinator steps/s = {:.0} steps/s in all (coordinator + services)",
        per_second * 4.0,
        per_second * 10.0
    );
    println!(
        "  one saga, start to completion: p50 {} ms, p99 {} ms, max {} ms",
        percentile(&durations, 50.0),
        percentile(&durations, 99.0),
        durations.last().copied().unwrap_or_default()
    );
    running.shutdown().await;
}
