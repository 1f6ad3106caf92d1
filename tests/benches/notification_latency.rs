//! End-to-end latency on Pulsar: from the HTTP 202 of `POST /vuelos/reserva-comando` to the
//! notification being sent. The command travels through the outbox and `comandos-reserva`, its
//! consumer creates the reservation, the event travels through the outbox and
//! `eventos-reserva`, and `notificaciones` sends the mail.
//!
//! The system runs in this process on SQLite and the Pulsar broker at `SEEDWORK_PULSAR_URL`
//! (default `pulsar://127.0.0.1:6650`; `scripts/services up pulsar`). Requests go one at a
//! time, each after the previous notification.
//!
//! ```text
//! cargo bench -p seedwork-tests --features pulsar --bench notification_latency
//! ```
//!
//! `BENCH_REQUESTS` (default 200) sets the sample size.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alpespartners::notificaciones::{EnviadorCorreo, Notificacion};
use alpespartners::system::{self, BrokerChoice, Config, Database, Services};
use seedwork_tests::system::reserva_del_readme;

/// Records when each reservation's notification was sent.
#[derive(Clone, Default)]
struct Reloj(Arc<Mutex<HashMap<String, Instant>>>);

#[seedwork::async_trait]
impl EnviadorCorreo for Reloj {
    async fn enviar(&self, notificacion: &Notificacion) -> seedwork::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(notificacion.id_reserva.clone())
            .or_insert_with(Instant::now);
        Ok(())
    }
}

impl Reloj {
    fn sent(&self, id: &str) -> Option<Instant> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let requests: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let url =
        std::env::var("SEEDWORK_PULSAR_URL").unwrap_or_else(|_| "pulsar://127.0.0.1:6650".into());
    let dir = tempfile::tempdir().expect("a temp dir");
    let reloj = Reloj::default();
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let config = Config {
        http: any_port,
        ui: any_port,
        database: Database::Sqlite(dir.path().join("bench.db").display().to_string()),
        correo: Arc::new(reloj.clone()),
        relay_poll: Duration::from_millis(200),
        broker: BrokerChoice::Pulsar(url.clone()),
        services: Services::ALL,
        // What is measured is the notification path alone, as before the saga existed.
        sagas: false,
        plazo_saga: Duration::from_secs(30),
        sondeo_plazos: Duration::from_millis(500),
        sondeo_proyecciones: Duration::from_millis(100),
        reconstruir_proyecciones: false,
    };
    let running = system::start(config).await.expect("the system starts");
    let api = format!(
        "http://{}/vuelos/reserva-comando",
        running.http_addr.expect("the API runs")
    );
    let http = reqwest::Client::new();
    let mut latencies = Vec::with_capacity(requests);
    for n in 0..requests + 10 {
        let id = uuid::Uuid::new_v4().to_string();
        let response = http
            .post(&api)
            .json(&reserva_del_readme(&id))
            .send()
            .await
            .expect("the API answers");
        assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
        let accepted = Instant::now();
        let deadline = accepted + Duration::from_secs(30);
        let sent = loop {
            if let Some(sent) = reloj.sent(&id) {
                break sent;
            }
            assert!(Instant::now() < deadline, "no notification for {id}");
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        // The first ten warm connections and producers up.
        if n >= 10 {
            latencies.push(sent.saturating_duration_since(accepted));
        }
    }
    latencies.sort();
    println!(
        "{requests} requests, broker {url}, SQLite: HTTP 202 -> notification  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        percentile(&latencies, 50.0).as_secs_f64() * 1e3,
        percentile(&latencies, 99.0).as_secs_f64() * 1e3,
        latencies.last().expect("samples").as_secs_f64() * 1e3,
    );
    running.shutdown().await;
}
