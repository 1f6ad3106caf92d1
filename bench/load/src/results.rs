//! The figures of a run, as written to `results.json` and read by the report and the plots.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::drive::Outcome;
use crate::stats::{self, Latency};

/// One run of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// `sync`, `async`, `growth` or `hops`.
    pub scenario: &'static str,
    /// The command line (passwords hidden).
    pub command: String,
    /// When it started (UTC).
    pub date: String,
    /// `git rev-parse --short HEAD` of the workspace, `-dirty` with changes.
    pub commit: Option<String>,
    /// The store.
    pub store: String,
    /// The broker.
    pub broker: String,
    /// The system's binary.
    pub binary: String,
    /// CPUs of this machine (the load generator shares them with the system).
    pub cpus: usize,
    /// The figures.
    #[serde(flatten)]
    pub figures: Figures,
    /// The system's output.
    pub log: String,
}

#[cfg(test)]
impl Run {
    /// A run of `scenario` with `figures`, its other fields fixed (for tests).
    pub fn for_test(scenario: &'static str, figures: Figures) -> Run {
        Run {
            scenario,
            command: format!("load {scenario}"),
            date: "2026-01-01 00:00 UTC".into(),
            commit: Some("abc1234".into()),
            store: "SQLite (a fresh file)".into(),
            broker: "database".into(),
            binary: "alpespartners".into(),
            cpus: 2,
            figures,
            log: "system.log".into(),
        }
    }
}

/// What was measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    /// The system's resident memory (KiB) once it answered `/health`.
    pub rss_idle_kib: Option<u64>,
    /// The system's resident memory (KiB) after the load.
    pub rss_after_kib: Option<u64>,
    /// `sync` and `async`: one per connection count.
    pub steps: Vec<Step>,
    /// `async`: the one-at-a-time 202 → created latency.
    pub created_latency: Option<Created>,
    /// `growth`: one per checkpoint.
    pub growth: Vec<GrowthPoint>,
    /// `hops`: one per hop of a request.
    pub hops: Vec<Hop>,
}

/// `hops`: the time one hop of a request took, over all measured requests.
#[derive(Debug, Clone, Serialize)]
pub struct Hop {
    /// `sync` or `async`.
    pub path: String,
    /// What was timed (a span path, or two stored timestamps).
    pub hop: String,
    /// `client` (the load generator's clock), `span` (the system's span timings) or
    /// `store` (the store's millisecond timestamps).
    pub source: String,
    /// Its times.
    pub latency: Latency,
}

/// One load step at a fixed connection count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    /// Connections.
    pub connections: usize,
    /// The measured window (warm-up excluded).
    pub seconds: f64,
    /// 2xx answers in the window.
    pub requests: u64,
    /// `requests` per second.
    pub per_second: f64,
    /// Latency of those answers.
    pub latency: Latency,
    /// Answers other than 2xx by status, warm-up included.
    pub non_2xx: BTreeMap<u16, u64>,
    /// Requests without an answer, warm-up included.
    pub transport_errors: u64,
    /// The first transport error.
    pub first_error: Option<String>,
    /// `(percentile, ms)` points of the latency distribution.
    pub curve: Vec<(f64, f64)>,
    /// `async`: what the command consumer did.
    pub queue: Option<Queue>,
    /// `sync`: CPU time per answered request, by process.
    pub cpu: Option<crate::cpu::PerRequest>,
    /// `sync`: what the window left behind — the seconds from its end until no message was on
    /// its way (the sagas and projections its requests started), and the CPU time per answered
    /// request from the window's start until then. A window whose background work falls behind
    /// answers more requests than the system can sustain; this shows by how much.
    #[serde(default)]
    pub settled: Option<Settled>,
    /// `sync` on SQLite: how busy the database's one writer was (warm-up included, as for the
    /// CPU time).
    #[serde(default)]
    pub writer: Option<crate::writer::Busy>,
}

/// See [`Step::settled`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settled {
    /// Seconds from the window's end until no message was on its way.
    pub seconds: f64,
    /// CPU time per answered request from the window's start until then.
    pub cpu: crate::cpu::PerRequest,
}

impl Step {
    /// The figures of a finished load.
    pub fn of(connections: usize, outcome: &Outcome) -> Step {
        let tally = &outcome.tally;
        Step {
            connections,
            seconds: outcome.window.as_secs_f64(),
            requests: tally.ok,
            per_second: stats::rate(tally.ok, outcome.window),
            latency: stats::summarize(&tally.latency),
            non_2xx: tally.statuses.clone(),
            transport_errors: tally.errors,
            first_error: tally.first_error.clone(),
            curve: stats::curve(&tally.latency),
            queue: None,
            cpu: None,
            settled: None,
            writer: None,
        }
    }

    /// A 5 s step of `connections` at `per_second`, its other figures empty (for tests).
    #[cfg(test)]
    pub fn at_rate(connections: usize, per_second: f64) -> Step {
        Step {
            connections,
            seconds: 5.0,
            requests: 0,
            per_second,
            latency: stats::summarize(&stats::histogram()),
            non_2xx: Default::default(),
            transport_errors: 0,
            first_error: None,
            curve: Vec::new(),
            queue: None,
            cpu: None,
            settled: None,
            writer: None,
        }
    }

    /// Answers other than 2xx, all statuses together.
    pub fn non_2xx_total(&self) -> u64 {
        self.non_2xx.values().sum()
    }
}

/// `async`: accepted commands against executed ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Queue {
    /// 202 answers of the step, warm-up included.
    pub accepted: u64,
    /// 202 answers per second in the measured window.
    pub accepted_per_second: f64,
    /// Reservations created per second in the measured window.
    pub executed_per_second: f64,
    /// From the load's last answer until every accepted command was executed (`None`: not
    /// within the drain timeout).
    pub drain_seconds: Option<f64>,
    /// Accepted but not executed when the drain timeout passed.
    pub backlog: u64,
    /// `(seconds since the step started, stored reservations)`, every 250 ms.
    pub samples: Vec<(f64, u64)>,
}

/// The one-at-a-time 202 → created latency.
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    /// Requests sent.
    pub requests: u32,
    /// Requests not answered 202.
    pub refused: u32,
    /// Accepted reservations not visible in time.
    pub not_seen: u32,
    /// From the 202 to the reservation's query answering 200.
    pub latency: Latency,
}

/// `growth`: one measurement at a store size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrowthPoint {
    /// The checkpoint prefilled to.
    pub checkpoint: u64,
    /// Stored reservations when the measurement began.
    pub stored: u64,
    /// Stored reservations after it.
    pub stored_after: u64,
    /// Seconds the prefill to this checkpoint took.
    pub prefill_seconds: f64,
    /// Reservations inserted by that prefill.
    pub prefill_inserted: u64,
    /// Seconds from the prefill's end until no message was on its way (measured after).
    pub idle_seconds: f64,
    /// The median measurement by req/s (`sync`).
    pub step: Step,
    /// Req/s of every measurement at this checkpoint, in the order they ran.
    #[serde(default)]
    pub per_second_runs: Vec<f64>,
    /// With `--against-fresh`: req/s of the fresh system measured right after each of those.
    #[serde(default)]
    pub fresh_per_second_runs: Vec<f64>,
    /// With `--against-fresh`: the median of the pairs' ratios, grown / fresh.
    #[serde(default)]
    pub ratio_to_fresh: Option<f64>,
}
