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
    /// Every step, in the order run.
    pub steps: Vec<Step>,
    /// The whole run's time.
    pub took: Duration,
    /// The 1-minute load average before and after the measured steps.
    pub load_average: (Option<f64>, Option<f64>),
    /// `--breakdown`'s figures.
    pub breakdown: Option<Breakdown>,
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

impl Report {
    fn find(&self, framework: Framework, writers: usize) -> Option<&Step> {
        self.steps
            .iter()
            .find(|s| s.framework == framework && s.writers == writers)
    }

    fn writer_counts(&self) -> Vec<usize> {
        let mut counts: Vec<usize> = self.steps.iter().map(|s| s.writers).collect();
        counts.dedup();
        counts
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
            "- append: {} accounts of {} events per writer; load: {} whole-account loads per \
             reader; no snapshots; pools of 16 connections each; whole run {:.1} s\n",
            self.aggregates,
            self.events,
            self.loads,
            self.took.as_secs_f64()
        );

        let _ = writeln!(
            out,
            "| workload | W | seedwork | cqrs-es | seedwork / cqrs-es |\n|---|---:|---:|---:|---:|"
        );
        type Figure = fn(&Step) -> f64;
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
                let seedwork = self.find(Framework::Seedwork, writers).map(figure);
                let cqrs = self.find(Framework::CqrsEs, writers).map(figure);
                let show = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.0}"));
                let ratio = match (seedwork, cqrs) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                    _ => "–".to_string(),
                };
                let _ = writeln!(
                    out,
                    "| {label} | {writers} | {} | {} | {ratio} |",
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
            "| framework | workload | W | done | s | per s | p50 ms | p99 ms | CPU | Lock | \
             Client | other |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
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
                    "| {} | {workload} | {} | {}{} | {:.2} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {other} |",
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
                        "- {} {workload} W={}: {} ({} samples)",
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
                    "· `get_for_update` (snapshot lookup + events)",
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
            .map(|s| format!("{} W={}: {}", s.framework.label(), s.writers, s.stored))
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
