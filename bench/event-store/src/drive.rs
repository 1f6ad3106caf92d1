//! The two workloads, each bounded in count and in time, and the wait-event sampler that runs
//! beside them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sqlx08::PgPool;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::sides::Side;

/// What one measured phase did.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Operations done: commands (append) or whole-aggregate loads (load).
    pub operations: u64,
    /// Aggregates built (append) or loaded (load).
    pub aggregates: u64,
    /// Events appended (append) or read (load).
    pub events: u64,
    /// From the first operation's start to the last one's end.
    pub elapsed: Duration,
    /// Each operation's latency, sorted.
    pub latencies: Vec<Duration>,
    /// Whether the time bound stopped the phase before its count.
    pub cut_short: bool,
    /// What the database's backends were doing meanwhile.
    pub waits: Waits,
}

impl Measured {
    /// Operations per second.
    pub fn per_second(&self, count: u64) -> f64 {
        count as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at percentile `p` (0–100).
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = (p / 100.0 * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    fn from_tasks(outcomes: Vec<TaskOutcome>, elapsed: Duration, events_each: u64) -> Self {
        let mut measured = Measured {
            elapsed,
            ..Measured::default()
        };
        for outcome in outcomes {
            measured.operations += outcome.latencies.len() as u64;
            measured.aggregates += outcome.aggregates;
            measured.cut_short |= outcome.cut_short;
            measured.latencies.extend(outcome.latencies);
        }
        measured.events = measured.aggregates * events_each;
        measured.latencies.sort_unstable();
        measured
    }
}

struct TaskOutcome {
    aggregates: u64,
    latencies: Vec<Duration>,
    cut_short: bool,
    ids: Vec<String>,
}

/// The append workload: `writers` tasks, each building up to `aggregates` accounts of
/// `events` commands (the first creates the account, each later one loads it and appends one
/// event), starting no new account once `limit` has passed. Answers the figures and the ids of
/// the accounts built.
pub async fn append(
    side: &Arc<Side>,
    writers: usize,
    aggregates: usize,
    events: u64,
    limit: Duration,
    sampler: Option<&Sampler>,
) -> Result<(Measured, Vec<String>)> {
    let sampling = sampler.map(Sampler::start);
    let started = Instant::now();
    let stop_at = started + limit;
    let mut tasks = JoinSet::new();
    for _ in 0..writers {
        let side = Arc::clone(side);
        tasks.spawn(async move {
            let mut outcome = TaskOutcome {
                aggregates: 0,
                latencies: Vec::with_capacity(aggregates * events as usize),
                cut_short: false,
                ids: Vec::with_capacity(aggregates),
            };
            for _ in 0..aggregates {
                if Instant::now() >= stop_at {
                    outcome.cut_short = true;
                    break;
                }
                let id = format!("account-{}", uuid::Uuid::new_v4().simple());
                for n in 0..events {
                    let begun = Instant::now();
                    side.command(&id, n)
                        .await
                        .with_context(|| format!("command {n} on {id}"))?;
                    outcome.latencies.push(begun.elapsed());
                }
                outcome.aggregates += 1;
                outcome.ids.push(id);
            }
            anyhow::Ok(outcome)
        });
    }
    let outcomes = join(tasks).await?;
    let elapsed = started.elapsed();
    let ids = outcomes.iter().flat_map(|o| o.ids.clone()).collect();
    let mut measured = Measured::from_tasks(outcomes, elapsed, events);
    if let Some(sampling) = sampling {
        measured.waits = sampling.stop().await?;
    }
    Ok((measured, ids))
}

/// The load workload: `readers` tasks, each loading up to `loads` whole accounts of `ids`
/// (each starting at its own offset, round robin) and checking each has `events` events,
/// starting no new load once `limit` has passed.
pub async fn load(
    side: &Arc<Side>,
    readers: usize,
    ids: &Arc<Vec<String>>,
    loads: usize,
    events: u64,
    limit: Duration,
    sampler: Option<&Sampler>,
) -> Result<Measured> {
    anyhow::ensure!(!ids.is_empty(), "no stored account to load");
    let sampling = sampler.map(Sampler::start);
    let started = Instant::now();
    let stop_at = started + limit;
    let mut tasks = JoinSet::new();
    for reader in 0..readers {
        let side = Arc::clone(side);
        let ids = Arc::clone(ids);
        tasks.spawn(async move {
            let offset = reader * ids.len() / readers;
            let mut outcome = TaskOutcome {
                aggregates: 0,
                latencies: Vec::with_capacity(loads),
                cut_short: false,
                ids: Vec::new(),
            };
            for i in 0..loads {
                if Instant::now() >= stop_at {
                    outcome.cut_short = true;
                    break;
                }
                let id = &ids[(offset + i) % ids.len()];
                let begun = Instant::now();
                side.load(id, events).await?;
                outcome.latencies.push(begun.elapsed());
                outcome.aggregates += 1;
            }
            anyhow::Ok(outcome)
        });
    }
    let outcomes = join(tasks).await?;
    let mut measured = Measured::from_tasks(outcomes, started.elapsed(), events);
    if let Some(sampling) = sampling {
        measured.waits = sampling.stop().await?;
    }
    Ok(measured)
}

async fn join(mut tasks: JoinSet<Result<TaskOutcome>>) -> Result<Vec<TaskOutcome>> {
    let mut outcomes = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        outcomes.push(joined.context("a worker task panicked")??);
    }
    Ok(outcomes)
}

/// What the benchmark database's client backends were doing, summed over samples of
/// `pg_stat_activity`: by wait event (`type:event`, `CPU` when a backend waits for nothing),
/// for the backends inside a statement or a transaction.
#[derive(Debug, Clone, Default)]
pub struct Waits {
    /// Samples taken.
    pub samples: u64,
    /// Backends seen, by wait event, summed over the samples.
    pub seen: BTreeMap<String, u64>,
}

impl Waits {
    /// The mean number of backends per sample whose wait event type is `kind` (`CPU`: none).
    pub fn mean(&self, kind: &str) -> f64 {
        self.mean_where(|seen| type_of(seen) == kind)
    }

    /// The mean number of backends per sample whose wait event type is none of `named`.
    pub fn mean_other(&self, named: &[&str]) -> f64 {
        self.mean_where(|seen| !named.contains(&type_of(seen)))
    }

    /// Each wait event (`type:event`, or `CPU`) with its mean number of backends per sample,
    /// most frequent first.
    pub fn events(&self) -> Vec<(String, f64)> {
        let mut events: Vec<(String, f64)> = self
            .seen
            .iter()
            .map(|(kind, n)| (kind.clone(), *n as f64 / self.samples.max(1) as f64))
            .collect();
        events.sort_by(|a, b| b.1.total_cmp(&a.1));
        events
    }

    fn mean_where(&self, keep: impl Fn(&str) -> bool) -> f64 {
        if self.samples == 0 {
            return 0.0;
        }
        let kept: u64 = self
            .seen
            .iter()
            .filter(|(kind, _)| keep(kind))
            .map(|(_, n)| n)
            .sum();
        kept as f64 / self.samples as f64
    }
}

/// The wait event type of a `type:event` key.
fn type_of(seen: &str) -> &str {
    seen.split_once(':').map_or(seen, |(kind, _)| kind)
}

/// Samples `pg_stat_activity` of one database every `every`, from a pool on another database
/// (so that its own queries are not counted).
#[derive(Clone)]
pub struct Sampler {
    pool: PgPool,
    database: String,
    every: Duration,
}

const SAMPLE: &str = "SELECT COALESCE(wait_event_type || ':' || wait_event, 'CPU') AS kind, \
    COUNT(*)::BIGINT AS n \
    FROM pg_stat_activity \
    WHERE datname = $1 AND backend_type = 'client backend' \
      AND state IN ('active', 'idle in transaction') AND pid <> pg_backend_pid() \
    GROUP BY 1";

/// A sampler running until [`stop`](Self::stop).
pub struct Sampling {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<Waits>>,
}

impl Sampler {
    /// Samples `database` through `pool` every `every`.
    pub fn new(pool: PgPool, database: &str, every: Duration) -> Self {
        Sampler {
            pool,
            database: database.to_string(),
            every,
        }
    }

    fn start(&self) -> Sampling {
        let (stop, mut stopped) = watch::channel(false);
        let sampler = self.clone();
        let task = tokio::spawn(async move {
            let mut waits = Waits::default();
            let mut ticks = tokio::time::interval(sampler.every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = ticks.tick() => {}
                }
                let rows: Vec<(String, i64)> = sqlx08::query_as(SAMPLE)
                    .bind(&sampler.database)
                    .fetch_all(&sampler.pool)
                    .await
                    .context("sampling pg_stat_activity")?;
                waits.samples += 1;
                for (kind, n) in rows {
                    *waits.seen.entry(kind).or_default() += n.max(0) as u64;
                }
            }
            Ok(waits)
        });
        Sampling { stop, task }
    }
}

impl Sampling {
    /// Stops sampling; answers what was seen.
    pub async fn stop(self) -> Result<Waits> {
        let _ = self.stop.send(true);
        self.task.await.context("the sampler panicked")?
    }
}
