//! The Markdown report: how the run was made, the figures of both frameworks and their
//! ratios.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, Result};
use sqlx08::PgPool;

use crate::breakdown::Breakdown;
use crate::drive::Measured;
use crate::sides::Framework;

/// The versions compared (pinned in Cargo.toml).
const VERSIONS: &str = "seedwork 0.1.0 (seedwork-sqlx, sqlx 0.9) against cqrs-es 0.5.0 + \
    postgres-es 0.5.0 (sqlx 0.8)";

/// The server's version and the settings that weigh on commits.
#[derive(Debug, Clone)]
pub struct Server {
    /// `SHOW server_version`.
    pub version: String,
    /// `fsync`, `synchronous_commit`, `ssl`, `shared_buffers`.
    pub settings: Vec<(String, String)>,
}

impl Server {
    /// Asks the server.
    pub async fn describe(pool: &PgPool) -> Result<Self> {
        let version: String = sqlx08::query_scalar("SHOW server_version")
            .fetch_one(pool)
            .await
            .context("asking the server's version")?;
        let mut settings = Vec::new();
        for name in ["fsync", "synchronous_commit", "ssl", "shared_buffers"] {
            let value: String = sqlx08::query_scalar(&format!("SHOW {name}"))
                .fetch_one(pool)
                .await
                .with_context(|| format!("SHOW {name}"))?;
            settings.push((name.to_string(), value));
        }
        Ok(Server { version, settings })
    }
}

/// One framework at one writer count.
#[derive(Debug, Clone)]
pub struct Step {
    /// The round it belongs to (1 for the first; see `--rounds`).
    pub round: usize,
    /// Which framework.
    pub framework: Framework,
    /// Writers (append) and readers (load).
    pub writers: usize,
    /// Events in its table after the append (warm-up included).
    pub stored: u64,
    /// The append workload.
    pub append: Measured,
    /// The load workload.
    pub load: Measured,
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The arguments given.
    pub command: String,
    /// Logical CPUs of this machine.
    pub cpus: usize,
    /// The server.
    pub server: Server,
    /// The database the run used.
    pub bench_database: String,
    /// Median `SELECT 1` time.
    pub round_trip: Duration,
    /// Accounts per writer.
    pub aggregates: usize,
    /// Loads per reader.
    pub loads: usize,
    /// Events per account.
    pub events: u64,
    /// Sampler interval (0: off).
    pub sample_ms: u64,
    /// Rounds run (`--rounds`).
    pub rounds: usize,
    /// Whether cqrs-es stored an event id and time per event (`--cqrs-metadata`).
    pub cqrs_metadata: bool,
    /// Every step, in the order run.
    pub steps: Vec<Step>,
    /// The whole run's time.
    pub took: Duration,
    /// The 1-minute load average before and after the measured steps.
    pub load_average: (Option<f64>, Option<f64>),
    /// `--breakdown`'s figures.
    pub breakdown: Option<Breakdown>,
}

/// A figure of a step (a rate).
type Figure = fn(&Step) -> f64;

/// The median (the mean of the two middle values of an even count); none of nothing.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

impl Report {
    /// The step of `framework` at `writers` in `round`.
    fn find(&self, framework: Framework, writers: usize, round: usize) -> Option<&Step> {
        self.steps
            .iter()
            .find(|s| s.framework == framework && s.writers == writers && s.round == round)
    }

    fn writer_counts(&self) -> Vec<usize> {
        let mut counts: Vec<usize> = Vec::new();
        for step in &self.steps {
            if !counts.contains(&step.writers) {
                counts.push(step.writers);
            }
        }
        counts
    }

    /// The median over the rounds of `figure` for `framework` at `writers`.
    fn median_of(&self, framework: Framework, writers: usize, figure: Figure) -> Option<f64> {
        median(
            (1..=self.rounds)
                .filter_map(|round| self.find(framework, writers, round).map(figure))
                .collect(),
        )
    }

    /// seedwork's figure over cqrs-es's, for each round that ran both.
    fn ratios(&self, writers: usize, figure: Figure) -> Vec<f64> {
        (1..=self.rounds)
            .filter_map(|round| {
                let a = self.find(Framework::Seedwork, writers, round).map(figure)?;
                let b = self.find(Framework::CqrsEs, writers, round).map(figure)?;
                (b > 0.0).then(|| a / b)
            })
            .collect()
    }

    /// The report.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let args = if self.command.is_empty() {
            String::new()
        } else {
            format!(" -- {}", self.command)
        };
        let _ = writeln!(out, "### Event store run\n");
        let _ = writeln!(
            out,
            "- command: `cargo run --release --manifest-path bench/event-store/Cargo.toml{args}`"
        );
        let load = |l: Option<f64>| l.map_or("?".to_string(), |l| format!("{l:.2}"));
        let _ = writeln!(
            out,
            "- machine: {} logical CPUs; the server and the benchmark share them; 1-minute load \
             average {} before the steps, {} after",
            self.cpus,
            load(self.load_average.0),
            load(self.load_average.1)
        );
        let settings: Vec<String> = self
            .server
            .settings
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let _ = writeln!(
            out,
            "- PostgreSQL {} ({}), database `{}`; `SELECT 1` round trip {:.3} ms (median)",
            self.server.version,
            settings.join(", "),
            self.bench_database,
            millis(self.round_trip)
        );
        let _ = writeln!(out, "- versions: {VERSIONS}");
        let _ = writeln!(
            out,
            "- metadata: seedwork's event carries its id and time in the payload; cqrs-es {}",
            if self.cqrs_metadata {
                "stores the same id and time in its metadata map (`--cqrs-metadata`)"
            } else {
                "stores none (its metadata map is empty)"
            }
        );
        let _ = writeln!(
            out,
            "- append: {} accounts of {} events per writer; load: {} whole-account loads per \
             reader; no snapshots; pools of 16 connections each; whole run {:.1} s\n",
            self.aggregates,
            self.events,
            self.loads,
            self.took.as_secs_f64()
        );

        if self.rounds > 1 {
            let _ = writeln!(
                out,
                "{} rounds, each framework and writer count once per round, the one that goes \
                 first alternating. The figures are medians over the rounds; the ratio is the \
                 median of the rounds' ratios (each from two steps run one after the other), \
                 every round's ratio listed after it.\n",
                self.rounds
            );
            let _ = writeln!(
                out,
                "| workload | W | seedwork | cqrs-es | seedwork / cqrs-es | rounds |\n\
                 |---|---:|---:|---:|---:|---|"
            );
        } else {
            let _ = writeln!(
                out,
                "| workload | W | seedwork | cqrs-es | seedwork / cqrs-es |\n|---|---:|---:|---:|---:|"
            );
        }
        let rows: [(&str, Figure); 3] = [
            ("append: events/s", |s| s.append.per_second(s.append.events)),
            ("append: commands/s", |s| {
                s.append.per_second(s.append.operations)
            }),
            ("load: aggregates/s", |s| {
                s.load.per_second(s.load.aggregates)
            }),
        ];
        for (label, figure) in rows {
            for writers in self.writer_counts() {
                let seedwork = self.median_of(Framework::Seedwork, writers, figure);
                let cqrs = self.median_of(Framework::CqrsEs, writers, figure);
                let show = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.0}"));
                let ratios = self.ratios(writers, figure);
                let ratio = median(ratios.clone()).map_or("–".to_string(), |r| format!("{r:.2}"));
                let each = if self.rounds > 1 {
                    let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
                    format!(" {} |", each.join(", "))
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "| {label} | {writers} | {} | {} | {ratio} |{each}",
                    show(seedwork),
                    show(cqrs)
                );
            }
        }

        let _ = writeln!(
            out,
            "\nIn the order run. Latency per command (append) or per load; backends: the mean \
             number of the benchmark database's backends per `pg_stat_activity` sample that \
             were running (CPU), waiting on a lock, waiting for the client inside a \
             transaction, or else.\n"
        );
        let _ = writeln!(
            out,
            "| round | framework | workload | W | done | s | per s | p50 ms | p99 ms | CPU | Lock | \
             Client | other |\n|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for step in &self.steps {
            for (workload, measured) in [("append", &step.append), ("load", &step.load)] {
                let waits = |kind: &str| {
                    if self.sample_ms == 0 {
                        "–".to_string()
                    } else {
                        format!("{:.2}", measured.waits.mean(kind))
                    }
                };
                let other = if self.sample_ms == 0 {
                    "–".to_string()
                } else {
                    format!(
                        "{:.2}",
                        measured.waits.mean_other(&["CPU", "Lock", "Client"])
                    )
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {workload} | {} | {}{} | {:.2} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {other} |",
                    step.round,
                    step.framework.label(),
                    step.writers,
                    measured.operations,
                    if measured.cut_short { " (time bound)" } else { "" },
                    measured.elapsed.as_secs_f64(),
                    measured.per_second(measured.operations),
                    millis(measured.percentile(50.0)),
                    millis(measured.percentile(99.0)),
                    waits("CPU"),
                    waits("Lock"),
                    waits("Client"),
                );
            }
        }
        if self.sample_ms > 0 {
            let _ = writeln!(
                out,
                "\nWait events (mean backends per sample, `type:event`; `CPU`: none):\n"
            );
            for step in &self.steps {
                for (workload, measured) in [("append", &step.append), ("load", &step.load)] {
                    let events: Vec<String> = measured
                        .waits
                        .events()
                        .into_iter()
                        .filter(|(_, mean)| *mean >= 0.005)
                        .map(|(event, mean)| format!("{event} {mean:.2}"))
                        .collect();
                    let _ = writeln!(
                        out,
                        "- round {} {} {workload} W={}: {} ({} samples)",
                        step.round,
                        step.framework.label(),
                        step.writers,
                        if events.is_empty() {
                            "none seen".to_string()
                        } else {
                            events.join(", ")
                        },
                        measured.waits.samples
                    );
                }
            }
        }
        if let Some(b) = &self.breakdown {
            let _ = writeln!(
                out,
                "\nOne at a time, medians ({} commands, {} loads per piece):\n",
                b.commands, b.loads
            );
            let _ = writeln!(out, "| piece | seedwork ms | cqrs-es ms |\n|---|---:|---:|");
            let rows: [(&str, Option<f64>, Option<f64>); 11] = [
                (
                    "command, whole",
                    Some(b.seedwork_command),
                    Some(b.cqrs_execute),
                ),
                (
                    "· `Bus::unit_of_work` (connection + BEGIN)",
                    Some(b.seedwork_begin),
                    None,
                ),
                (
                    "· `get_for_update` (the events)",
                    Some(b.seedwork_get_for_update),
                    None,
                ),
                (
                    "· `add` / `update` (the append)",
                    Some(b.seedwork_save),
                    None,
                ),
                ("· `commit`", Some(b.seedwork_commit), None),
                (
                    "load, whole (`get` / `load_aggregate`)",
                    Some(b.seedwork_get),
                    Some(b.cqrs_load_aggregate),
                ),
                (
                    "· snapshot lookup (`load_snapshot`)",
                    Some(b.seedwork_load_snapshot),
                    None,
                ),
                (
                    "· events (`EventStore::load` / `get_events`)",
                    Some(b.seedwork_load_events),
                    Some(b.cqrs_get_events),
                ),
                (
                    "load − events read",
                    Some(b.seedwork_get - b.seedwork_load_events),
                    Some(b.cqrs_load_aggregate - b.cqrs_get_events),
                ),
                (
                    "command − whole load (the write part)",
                    Some(b.seedwork_command - b.seedwork_get),
                    Some(b.cqrs_execute - b.cqrs_load_aggregate),
                ),
                (
                    "`SELECT 1` round trip",
                    Some(millis(self.round_trip)),
                    Some(millis(self.round_trip)),
                ),
            ];
            for (piece, seedwork, cqrs) in rows {
                let show = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.3}"));
                let _ = writeln!(out, "| {piece} | {} | {} |", show(seedwork), show(cqrs));
            }
        }
        let stored: Vec<String> = self
            .steps
            .iter()
            .map(|s| {
                format!(
                    "round {} {} W={}: {}",
                    s.round,
                    s.framework.label(),
                    s.writers,
                    s.stored
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "\nEvents stored after each append, warm-up included (checked against those \
             appended): {}.",
            stored.join("; ")
        );
        out
    }
}
