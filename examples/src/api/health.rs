//! `GET /health`: whether each part of the process does its job, answered 503 when one does
//! not — so a load balancer or an orchestrator takes the process out of rotation, and a person
//! sees which part is down and why.
//!
//! Two kinds of parts are reported:
//! - the long-running loops (the relay, each consumer, the UI forwarder), which report
//!   themselves to the process's [`Health`] register as they run and as their supervisor
//!   restarts them;
//! - the store and the outbox, probed when the request comes: a transaction is opened and
//!   rolled back, the broker is asked for a round trip ([`Publisher::check`]), and the outbox
//!   says how many messages wait, how old the oldest is (down past
//!   [`OUTBOX_LAG_LIMIT`]) and how many are parked.

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

/// How long a probe of the store may take before the store counts as down.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How old the oldest unpublished outbox message may be before the outbox counts as down: the
/// relay is not keeping up, or cannot reach the broker.
pub const OUTBOX_LAG_LIMIT: Duration = Duration::from_secs(60);

/// What `/health` looks at.
#[derive(Clone, Default)]
pub struct HealthCheck {
    health: Health,
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
                        pending: None,
                        parked: None,
                        oldest_pending_ms: None,
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
        let up = parts.values().all(|part| part.status == UP);
        HealthBody {
            status: if up { UP } else { DOWN },
            parts,
        }
    }
}

const UP: &str = "up";
const DOWN: &str = "down";

fn down(detail: String) -> PartBody {
    PartBody {
        status: DOWN,
        detail: Some(detail),
        since_ms: None,
        pending: None,
        parked: None,
        oldest_pending_ms: None,
    }
}

async fn probe_store(store: &dyn TransactionalStore) -> PartBody {
    let probe = async {
        let transaction = store.begin().await?;
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
                since_ms: None,
                pending: Some(lag.pending),
                parked: Some(lag.parked),
                oldest_pending_ms: age
                    .map(|age| u64::try_from(age.as_millis()).unwrap_or(u64::MAX)),
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
    /// `ui:forwarder`, `transport:retention`.
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
