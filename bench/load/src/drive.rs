//! The load: each connection is a task sending one request at a time through one shared
//! client (whose pool holds the connections), until the plan's end or its request cap.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use reqwest::{Client, StatusCode};
use tokio::task::JoinHandle;

use crate::stats;

/// Which operation the load calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /vuelos/reserva`: 200 with the stored reservation.
    Sync,
    /// `POST /vuelos/reserva-comando`: 202, created later by the command consumer.
    Async,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Sync => "/vuelos/reserva",
            Endpoint::Async => "/vuelos/reserva-comando",
        }
    }
}

/// The system's API and the client that talks to it.
#[derive(Clone)]
pub struct Target {
    client: Client,
    base_url: String,
    body: Arc<(String, String)>,
}

const ID_MARK: &str = "__ID__";

impl Target {
    /// One client for the whole run; `request_timeout` bounds each request.
    pub fn new(base_url: &str, request_timeout: Duration) -> Result<Target> {
        let client = Client::builder()
            .timeout(request_timeout)
            .build()
            .context("building the HTTP client")?;
        let template = reserva(ID_MARK).to_string();
        let (prefix, suffix) = template
            .split_once(ID_MARK)
            .context("the request body has its id")?;
        Ok(Target {
            client,
            base_url: base_url.to_string(),
            body: Arc::new((prefix.to_string(), suffix.to_string())),
        })
    }

    /// The body of a new reservation with this id.
    fn body(&self, id: &str) -> String {
        format!("{}{id}{}", self.body.0, self.body.1)
    }

    /// Sends one new reservation and reads the whole answer (so the connection goes back to
    /// the pool).
    pub(crate) async fn create(&self, endpoint: Endpoint, id: &str) -> reqwest::Result<StatusCode> {
        let response = self
            .client
            .post(format!("{}{}", self.base_url, endpoint.path()))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(self.body(id))
            .send()
            .await?;
        let status = response.status();
        response.bytes().await?;
        Ok(status)
    }

    /// `GET /vuelos/reserva-query/{id}`'s status.
    async fn query(&self, id: &str) -> reqwest::Result<StatusCode> {
        let response = self
            .client
            .get(format!("{}/vuelos/reserva-query/{id}", self.base_url))
            .send()
            .await?;
        let status = response.status();
        response.bytes().await?;
        Ok(status)
    }
}

/// The README's reservation (`reserva_del_readme` of the tests) with this id.
pub fn reserva(id: &str) -> serde_json::Value {
    serde_json::json!({
        "fecha_creacion": "2025-09-03T12:00:00Z",
        "fecha_actualizacion": "2025-09-03T12:00:00Z",
        "id": id,
        "itinerarios": [{"odos": [{"segmentos": [{"legs": [{
            "fecha_salida": "2022-11-22T13:10:00Z",
            "fecha_llegada": "2022-11-22T15:10:00Z",
            "destino": {"codigo": "sasads", "nombre": "John F. Kennedy International Airport"},
            "origen": {"codigo": "gggg", "nombre": "El Dorado - Bogotá International Airport (BOG)"}
        }]}]}]}]
    })
}

/// When a load runs and how much it may send.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Connections (tasks).
    pub connections: usize,
    /// Answers from here on are measured (before: warm-up).
    pub warm_end: Instant,
    /// No request starts after this; answers after it are not measured.
    pub end: Instant,
    /// At most this many requests in all (warm-up included).
    pub limit: u64,
}

impl Plan {
    /// `warmup` then `duration` from now.
    pub fn timed(connections: usize, warmup: Duration, duration: Duration, limit: u64) -> Plan {
        let now = Instant::now();
        Plan {
            connections,
            warm_end: now + warmup,
            end: now + warmup + duration,
            limit,
        }
    }

    /// Exactly `count` requests (fewer if `timeout` passes first), all measured.
    pub fn counted(connections: usize, count: u64, timeout: Duration) -> Plan {
        let now = Instant::now();
        Plan {
            connections,
            warm_end: now,
            end: now + timeout,
            limit: count,
        }
    }
}

/// What a load's answers were.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Latencies (µs) of the 2xx answers that arrived in the measured window.
    pub latency: Histogram<u64>,
    /// 2xx answers in the measured window.
    pub ok: u64,
    /// 2xx answers in all (warm-up and the last answers after the end included).
    pub ok_total: u64,
    /// Requests sent.
    pub sent: u64,
    /// Answers other than 2xx, by status, over the whole load.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no answer (connection failures, timeouts), over the whole load.
    pub errors: u64,
    /// The first transport error, to say what went wrong.
    pub first_error: Option<String>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latency: stats::histogram(),
            ok: 0,
            ok_total: 0,
            sent: 0,
            statuses: BTreeMap::new(),
            errors: 0,
            first_error: None,
        }
    }

    fn merge(&mut self, other: Tally) -> Result<()> {
        self.latency
            .add(&other.latency)
            .context("merging latency histograms")?;
        self.ok += other.ok;
        self.ok_total += other.ok_total;
        self.sent += other.sent;
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        Ok(())
    }
}

/// A load under way.
pub struct Running {
    plan: Plan,
    tasks: Vec<JoinHandle<Tally>>,
}

/// A finished load.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Its answers.
    pub tally: Tally,
    /// The measured window: from the warm-up's end to the plan's end, or to the moment the
    /// last connection stopped when the cap stopped them sooner.
    pub window: Duration,
    /// When the last answer arrived.
    pub finished: Instant,
}

/// Starts the plan's connections against `endpoint`.
pub fn start(target: &Target, endpoint: Endpoint, plan: Plan) -> Running {
    let sent = Arc::new(AtomicU64::new(0));
    let tasks = (0..plan.connections)
        .map(|_| {
            let target = target.clone();
            let sent = Arc::clone(&sent);
            tokio::spawn(async move { connection(target, endpoint, plan, sent).await })
        })
        .collect();
    Running { plan, tasks }
}

impl Running {
    /// Waits for every connection to stop.
    pub async fn finish(self) -> Result<Outcome> {
        let mut tally = Tally::new();
        for task in self.tasks {
            tally.merge(task.await.context("a load task failed")?)?;
        }
        let finished = Instant::now();
        let window_end = finished.min(self.plan.end);
        Ok(Outcome {
            tally,
            window: window_end.saturating_duration_since(self.plan.warm_end),
            finished,
        })
    }
}

async fn connection(target: Target, endpoint: Endpoint, plan: Plan, sent: Arc<AtomicU64>) -> Tally {
    let mut tally = Tally::new();
    while Instant::now() < plan.end && sent.fetch_add(1, Ordering::Relaxed) < plan.limit {
        tally.sent += 1;
        let id = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let result = target.create(endpoint, &id).await;
        let done = Instant::now();
        match result {
            Ok(status) if status.is_success() => {
                tally.ok_total += 1;
                if done >= plan.warm_end && done <= plan.end {
                    tally.ok += 1;
                    stats::record(&mut tally.latency, done - started);
                }
            }
            Ok(status) => *tally.statuses.entry(status.as_u16()).or_default() += 1,
            Err(error) => {
                tally.errors += 1;
                tally.first_error.get_or_insert_with(|| error_chain(&error));
                // An unreachable system fails at once: do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    tally
}

/// An error with its causes, `a: b: c`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The "202 → created" probe: one request at a time.
#[derive(Debug, Clone)]
pub struct Probe {
    /// From the 202 to the first 200 of `GET /vuelos/reserva-query/{id}` (µs).
    pub latency: Histogram<u64>,
    /// Requests sent.
    pub requests: u32,
    /// Requests not answered 202.
    pub refused: u32,
    /// Accepted reservations not visible within the timeout.
    pub not_seen: u32,
}

/// Sends `count` reservations to `POST /vuelos/reserva-comando` one at a time and, after
/// each 202, polls its query every millisecond until it answers 200 (at most `timeout`).
pub async fn created_latency(target: &Target, count: u32, timeout: Duration) -> Probe {
    let mut probe = Probe {
        latency: stats::histogram(),
        requests: 0,
        refused: 0,
        not_seen: 0,
    };
    for _ in 0..count {
        probe.requests += 1;
        let id = uuid::Uuid::new_v4().to_string();
        match target.create(Endpoint::Async, &id).await {
            Ok(StatusCode::ACCEPTED) => {}
            _ => {
                probe.refused += 1;
                continue;
            }
        }
        let accepted = Instant::now();
        loop {
            if let Ok(StatusCode::OK) = target.query(&id).await {
                stats::record(&mut probe.latency, accepted.elapsed());
                break;
            }
            if accepted.elapsed() > timeout {
                probe.not_seen += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    probe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_carries_the_id() {
        let target = Target::new("http://127.0.0.1:1", Duration::from_secs(1)).unwrap();
        let body: serde_json::Value = serde_json::from_str(&target.body("abc")).unwrap();
        assert_eq!(body, reserva("abc"));
    }

    #[test]
    fn a_counted_plan_measures_everything() {
        let plan = Plan::counted(4, 100, Duration::from_secs(5));
        assert_eq!(plan.limit, 100);
        assert!(plan.warm_end < plan.end);
    }
}
