//! `GET /health`: whether each part of the process does its job, answered 503 when one does
//! not — so a load balancer or an orchestrator takes the process out of rotation, and a person
//! sees which part is down and why.
//!
//! Two kinds of parts are reported:
//! - the long-running loops (the relay, each consumer, the UI forwarder), which report
//!   themselves to the process's [`Health`] register as they run and as their supervisor
//!   restarts them;
//! - the store and the outbox, probed when the request comes: a write transaction is opened
//!   (a savepoint taken, so that SQLite asks for its write lock) and rolled back, the broker
//!   is asked for a round trip ([`Publisher::check`]), and the outbox says how many messages
//!   wait, how old the oldest is (down past [`OUTBOX_LAG_LIMIT`]) and how many are parked.
//!
//! On SQLite a third kind, `writer`, always up, gives the totals of the database's one writer
//! (write transactions, and how long they held it and waited for it): sampled twice, how busy
//! the writer was in between.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

use seedwork::eventsourcing::ProjectionRunner;
use seedwork::messaging::{OutboxStore, Publisher};
use seedwork::supervision::Health;
use seedwork::uow::TransactionalStore;
use seedwork_sqlx::WriterStats;

/// How long a probe of the store may take before the store counts as down.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How old the oldest unpublished outbox message may be before the outbox counts as down: the
/// relay is not keeping up, or cannot reach the broker.
pub const OUTBOX_LAG_LIMIT: Duration = Duration::from_secs(60);

/// Reads the totals of a SQLite database's writer gate ([`SqliteStore::writer_stats`]).
///
/// [`SqliteStore::writer_stats`]: seedwork_sqlx::SqlStore::writer_stats
pub type WriterSource = Arc<dyn Fn() -> Option<WriterStats> + Send + Sync>;

/// What `/health` looks at.
#[derive(Clone, Default)]
pub struct HealthCheck {
    health: Health,
    writer: Option<WriterSource>,
    store: Option<Arc<dyn TransactionalStore>>,
    outbox: Option<Arc<dyn OutboxStore>>,
    broker: Option<Arc<dyn Publisher>>,
    projections: Vec<Arc<ProjectionRunner>>,
}

impl HealthCheck {
    /// Reports the parts registered in `health`, and nothing else until told to probe.
    pub fn new(health: Health) -> Self {
        HealthCheck {
            health,
            ..HealthCheck::default()
        }
    }

    /// Also probes `store` on each request.
    pub fn store(mut self, store: Arc<dyn TransactionalStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Also reports how busy the store's one writer has been (SQLite): the part `writer`,
    /// always up, with its totals since the process started.
    pub fn writer(mut self, writer: WriterSource) -> Self {
        self.writer = Some(writer);
        self
    }

    /// Also checks on each request that `broker` can be reached ([`Publisher::check`]).
    pub fn broker(mut self, broker: Arc<dyn Publisher>) -> Self {
        self.broker = Some(broker);
        self
    }

    /// Also reports the outbox's backlog on each request.
    pub fn outbox(mut self, outbox: Arc<dyn OutboxStore>) -> Self {
        self.outbox = Some(outbox);
        self
    }

    /// The projections this process runs (the operators' routes show and rebuild them).
    pub fn with_projections(mut self, projections: Vec<Arc<ProjectionRunner>>) -> Self {
        self.projections = projections;
        self
    }

    /// The projections this process runs.
    pub fn projections(&self) -> Vec<Arc<ProjectionRunner>> {
        self.projections.clone()
    }

    /// The outbox it reports on, if any (the operators' routes work on the same one).
    pub fn outbox_store(&self) -> Option<Arc<dyn OutboxStore>> {
        self.outbox.clone()
    }

    /// Every part's status, the probes run now.
    pub async fn check(&self) -> HealthBody {
        let mut parts: BTreeMap<String, PartBody> = self
            .health
            .report()
            .parts
            .into_iter()
            .map(|(name, status)| {
                let since_ms = status
                    .since
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                (
                    name,
                    PartBody {
                        status: if status.up { UP } else { DOWN },
                        detail: Some(status.detail).filter(|d| !d.is_empty()),
                        since_ms: Some(since_ms),
                        ..PartBody::up()
                    },
                )
            })
            .collect();
        // The probes run side by side, so an answer takes at most one PROBE_TIMEOUT however
        // many backends are down.
        let (store, outbox, broker) = tokio::join!(
            async {
                match &self.store {
                    Some(store) => Some(probe_store(&**store).await),
                    None => None,
                }
            },
            async {
                match &self.outbox {
                    Some(outbox) => Some(probe_outbox(&**outbox).await),
                    None => None,
                }
            },
            async {
                match &self.broker {
                    Some(broker) => Some(probe_broker(&**broker).await),
                    None => None,
                }
            },
        );
        for (name, probed) in [("store", store), ("outbox", outbox), ("broker", broker)] {
            if let Some(part) = probed {
                parts.insert(name.into(), part);
            }
        }
        if let Some(stats) = self.writer.as_ref().and_then(|writer| writer()) {
            parts.insert("writer".into(), writer_part(stats));
        }
        let up = parts.values().all(|part| part.status == UP);
        HealthBody {
            status: if up { UP } else { DOWN },
            parts,
        }
    }
}

const UP: &str = "up";
const DOWN: &str = "down";

/// The writer's totals as a part: what to sample twice to see how busy it is.
fn writer_part(stats: WriterStats) -> PartBody {
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    PartBody {
        detail: Some(format!(
            "the database's one writer: {} write transactions, holding it {} ms and waiting {} ms in all",
            stats.turns,
            millis(stats.held),
            millis(stats.waited)
        )),
        turns: Some(stats.turns),
        held_ms: Some(millis(stats.held)),
        waited_ms: Some(millis(stats.waited)),
        ..PartBody::up()
    }
}

fn down(detail: String) -> PartBody {
    PartBody {
        status: DOWN,
        detail: Some(detail),
        ..PartBody::up()
    }
}

async fn probe_store(store: &dyn TransactionalStore) -> PartBody {
    let probe = async {
        let mut transaction = store.begin().await?;
        // A savepoint is a statement: SQLite's store sends `BEGIN IMMEDIATE` with a unit of
        // work's first statement, and only then is the write lock asked for.
        transaction.savepoint("seedwork_health").await?;
        transaction.rollback().await
    };
    match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(Ok(())) => PartBody::up(),
        Ok(Err(error)) => down(error.to_string()),
        Err(_) => down(format!("no answer within {PROBE_TIMEOUT:?}")),
    }
}

async fn probe_broker(broker: &dyn Publisher) -> PartBody {
    match tokio::time::timeout(PROBE_TIMEOUT, broker.check()).await {
        Ok(Ok(())) => PartBody::up(),
        Ok(Err(error)) => down(error.to_string()),
        Err(_) => down(format!("no answer within {PROBE_TIMEOUT:?}")),
    }
}

async fn probe_outbox(outbox: &dyn OutboxStore) -> PartBody {
    match tokio::time::timeout(PROBE_TIMEOUT, outbox.lag()).await {
        Ok(Ok(lag)) => {
            let age = lag.oldest_pending_age;
            let behind = age.is_some_and(|age| age > OUTBOX_LAG_LIMIT);
            let detail = match (behind, lag.parked) {
                (true, _) => Some(format!(
                    "the oldest unpublished message waits for {:?} (limit {OUTBOX_LAG_LIMIT:?})",
                    age.unwrap_or_default()
                )),
                (false, 0) => None,
                (false, parked) => Some(format!(
                    "{parked} message(s) parked after failing to publish; an operator must \
                     re-drive or discard them"
                )),
            };
            PartBody {
                status: if behind { DOWN } else { UP },
                detail,
                pending: Some(lag.pending),
                parked: Some(lag.parked),
                oldest_pending_ms: age
                    .map(|age| u64::try_from(age.as_millis()).unwrap_or(u64::MAX)),
                ..PartBody::up()
            }
        }
        Ok(Err(error)) => down(error.to_string()),
        Err(_) => down(format!("no answer within {PROBE_TIMEOUT:?}")),
    }
}

/// The body of `GET /health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthBody {
    /// `up` when every part is up, else `down` (and the status code is 503).
    #[schema(example = "up")]
    pub status: &'static str,
    /// Each part by name: `store`, `outbox`, `broker`, `relay`, `consumer:<name>`,
    /// `ui:forwarder`, `transport:retention`, `writer` (SQLite).
    pub parts: BTreeMap<String, PartBody>,
}

/// One part's status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartBody {
    /// `up` or `down`.
    pub status: &'static str,
    /// Why it is down, or what is worth knowing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Since when (epoch milliseconds) it has been in this status, for the loops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    /// For the outbox: messages committed and not yet published (parked ones excluded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<u64>,
    /// For the outbox: messages parked after failing to publish, waiting for an operator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parked: Option<u64>,
    /// For the outbox: how long the oldest unpublished message has waited (the relay's lag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_pending_ms: Option<u64>,
    /// For the writer (SQLite): write transactions since the process started, each one turn
    /// of the database's one writer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turns: Option<u64>,
    /// For the writer: how long those transactions held it, in all. Sampled twice, its growth
    /// over the time between is how busy the writer was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_ms: Option<u64>,
    /// For the writer: how long transactions waited for their turn, in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_ms: Option<u64>,
}

impl PartBody {
    fn up() -> Self {
        PartBody {
            status: UP,
            detail: None,
            since_ms: None,
            pending: None,
            parked: None,
            oldest_pending_ms: None,
            turns: None,
            held_ms: None,
            waited_ms: None,
        }
    }
}

/// Whether each part of the process does its job.
#[utoipa::path(get, path = "/health", tag = "system",
    responses(
        (status = 200, description = "Every part is up", body = HealthBody),
        (status = 503, description = "At least one part is down; the body says which and why", body = HealthBody),
    ))]
pub(super) async fn health(Extension(check): Extension<HealthCheck>) -> Response {
    let body = check.check().await;
    let status = if body.status == UP {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
