//! `load`: a load benchmark of the AlpesPartners example, to rerun on any machine.
//!
//! It starts the example's release binary as a child process (free loopback ports, a fresh
//! store: a SQLite file in a temporary directory, or a fresh schema in a PostgreSQL database
//! that is dropped afterwards), waits for `GET /health`, drives it over HTTP from this
//! process and stops it at the end, on an error or on Ctrl-C. Each connection is a task
//! sending one request at a time (a closed loop), all through one HTTP client whose pool
//! holds the connections; every request creates a reservation with a new id.
//!
//! Scenarios:
//! - `sync`: `POST /vuelos/reserva` (validated, stored and read back before the 200) at each
//!   `--connections` count (default 1,8,64), `--warmup` seconds (default 2) not counted, then
//!   `--duration` seconds (default 10) measured: requests, req/s, p50/p90/p99/max latency,
//!   answers other than 2xx and transport errors.
//! - `async`: the same steps on `POST /vuelos/reserva-comando` (202; the command goes
//!   through the outbox, the broker and the command consumer, which creates the
//!   reservation). The stored reservations are counted every 250 ms: accepted/s and
//!   executed/s in the measured window, and the drain time from the load's last answer until
//!   every accepted command was executed (at most `--drain-timeout`, default 120 s). Then,
//!   once no message is on its way (the events of the load may still be in the outbox after
//!   the drain), `--notify-latency` (default 50) requests one at a time time the "202 →
//!   created" latency:
//!   from the 202 until `GET /vuelos/reserva-query/{id}`, polled every millisecond, answers
//!   200.
//! - `growth`: from an empty store, prefill through the API with 64 connections to each
//!   checkpoint (every `--checkpoint-every`, default 10 000, up to `--rows`, default 50 000),
//!   then measure `sync` at 8 connections for `--duration` (default 5 s): req/s and p99
//!   against the stored reservations; with `--against-fresh`, each measurement paired with
//!   one of a system on a fresh store, and the ratio of the two.
//! - `hops`: where one request's time goes, one request at a time.
//! - `replot RESULTS`: draws a finished run's plots again from its `results.json`.
//!
//! `--rounds N` runs `sync`, `async` or `hops` N times; with `--baseline BINARY`, alternately with that
//! binary, and reports each one's medians and the median of the rounds' ratios
//! (`comparison.md`; see `compare.rs`).
//!
//! Every step is bounded in time and by `--max-requests` (default 1 000 000). The system's
//! resident memory (`VmRSS`) is read once it is up and again after the load.
//!
//! Output: a Markdown report on stdout (command line, date, commit, store, broker and the
//! table, ready for `docs/performance.md`; progress goes to stderr), and in `--out` (default
//! `target/load/<timestamp>`): `results.json` with every figure, `system.log` with the
//! system's output, and the plots (or in `--plot-dir`): `latency-sync.svg` /
//! `latency-async.svg` (latency against percentile per connection count) and `growth.svg`.
//!
//! ```text
//! cargo build --release --example alpespartners
//! cargo run --release -p seedwork-load -- sync
//! cargo run --release -p seedwork-load -- async --duration 5 --connections 1,8
//! cargo run --release -p seedwork-load -- growth --rows 50000
//! cargo run --release -p seedwork-load -- sync \
//!     --database postgres://seedwork:seedwork@127.0.0.1:5432/seedwork
//! cargo build --release --example alpespartners --features pulsar
//! cargo run --release -p seedwork-load -- async --broker pulsar://127.0.0.1:6650 \
//!     --clear-pulsar-backlog http://127.0.0.1:8080
//! ```
//!
//! On Pulsar the system's durable subscriptions outlive a run's fresh store;
//! `--clear-pulsar-backlog ADMIN_URL` empties them before each start of the system, so a run
//! does not begin with what earlier runs left (it clears the whole `public/default` namespace:
//! use it on a broker of the benchmark's own).
//!
//! The binary is looked for in `release/examples/alpespartners` of the target directory
//! (`CARGO_TARGET_DIR`, else the one `load` was built into); `--binary PATH` names another.
//! The load generator runs on the same machine as the system and takes CPU from it: the
//! figures are those of the pair, which the report says with the machine's CPU count.
//! The system logs one line per notification at the default `info` level (into
//! `system.log`); set `RUST_LOG` to change that.

mod cli;
mod compare;
mod cpu;
mod drive;
mod hops;
mod meta;
mod plot;
mod report;
mod results;
mod scenario;
mod spans;
mod stats;
mod store;
mod system;
mod writer;

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;

use crate::cli::{Cli, Scenario};
use crate::results::Run;
use crate::system::System;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("load: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM, with the signal's name.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "Ctrl-C";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = terminate.recv() => "SIGTERM",
    }
}

async fn run() -> Result<()> {
    let cli = Cli::parse();
    if let Scenario::Replot(args) = &cli.scenario {
        return replot(&args.results, cli.output.plot_dir.as_deref());
    }
    let started = chrono::Utc::now();
    let out_dir = cli.output.out.clone().unwrap_or_else(|| {
        meta::target_dir()
            .join("load")
            .join(started.format("%Y%m%d-%H%M%S").to_string())
    });
    let binary = cli
        .system
        .binary
        .clone()
        .unwrap_or_else(meta::default_binary);
    let rounds = &cli.rounds;
    if rounds.rounds <= 1 && rounds.baseline.is_none() {
        let plot_dir = cli
            .output
            .plot_dir
            .clone()
            .unwrap_or_else(|| out_dir.clone());
        measure(&cli, &binary, &out_dir, &plot_dir).await?;
        return Ok(());
    }

    if !matches!(
        cli.scenario,
        Scenario::Sync(_) | Scenario::Async(_) | Scenario::Hops(_)
    ) {
        bail!("--rounds and --baseline compare `sync`, `async` and `hops` runs only");
    }
    if rounds.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let mut baseline_runs = Vec::new();
    let mut candidate_runs = Vec::new();
    for round in 0..rounds.rounds {
        let mut order = vec![(false, &binary)];
        if let Some(baseline) = &rounds.baseline {
            order.push((true, baseline));
            if compare::baseline_first(round) {
                order.reverse();
            }
        }
        for (is_baseline, which) in order {
            let label = if is_baseline { "baseline" } else { "candidate" };
            eprintln!("load: round {}/{}, {label}", round + 1, rounds.rounds);
            let dir = out_dir.join(format!("round-{}-{label}", round + 1));
            let run = measure(&cli, which, &dir, &dir).await?;
            if is_baseline {
                baseline_runs.push(run);
            } else {
                candidate_runs.push(run);
            }
        }
    }
    let candidate_name = binary.display().to_string();
    let baseline_name = rounds
        .baseline
        .as_ref()
        .map(|path| path.display().to_string());
    let table = compare::markdown(
        baseline_name
            .as_deref()
            .map(|name| (name, baseline_runs.as_slice())),
        (&candidate_name, &candidate_runs),
    );
    let summary = out_dir.join("comparison.md");
    let header = format!(
        "`{}` ({}, commit {})\n",
        meta::command_line(std::env::args().skip(1)),
        started.format("%Y-%m-%d %H:%M UTC"),
        meta::git_commit().as_deref().unwrap_or("unknown")
    );
    std::fs::write(&summary, format!("{header}{table}"))
        .with_context(|| format!("writing {}", summary.display()))?;
    print!("\n{header}{table}");
    eprintln!("load: comparison in {}", summary.display());
    Ok(())
}

/// One measurement: starts the system from `binary`, runs the scenario, stops it, writes
/// `results.json` (into `out_dir`) and the plots, prints the report, and returns the run.
async fn measure(cli: &Cli, binary: &Path, out_dir: &Path, plot_dir: &Path) -> Result<Run> {
    let started = chrono::Utc::now();
    for dir in [out_dir, plot_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    eprintln!("load: starting {}", binary.display());
    let environment = environment(&cli.scenario);
    let mut system = tokio::select! {
        system = System::start(&cli.system, binary, out_dir, &environment) => system?,
        signal = interrupted() => bail!("stopped by {signal} while the system started"),
    };
    eprintln!("load: the system answers at {}", system.base_url);
    let fresh = match &cli.scenario {
        Scenario::Growth(args) if args.against_fresh => Some(scenario::FreshSystems {
            args: &cli.system,
            binary,
            out_dir,
            environment: &environment,
        }),
        _ => None,
    };
    let figures = tokio::select! {
        figures = scenario::run(&cli.scenario, &mut system, fresh.as_ref()) => figures,
        signal = interrupted() => Err(anyhow!("stopped by {signal}")),
    };
    let run = Run {
        scenario: cli.scenario.name(),
        command: meta::command_line(std::env::args().skip(1)),
        date: started.format("%Y-%m-%d %H:%M UTC").to_string(),
        commit: meta::git_commit(),
        store: system.store_label.clone(),
        broker: system.broker_label.clone(),
        binary: system.binary.display().to_string(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        figures: Default::default(),
        log: system.log.display().to_string(),
    };
    let stopped = system.stop().await;
    let run = Run {
        figures: figures?,
        ..run
    };
    stopped?;

    let results = out_dir.join("results.json");
    report::write_json(&run, &results)?;
    draw(&run, plot_dir)?;
    print!("{}", report::markdown(&run, &results));
    Ok(run)
}

/// The parts of a `results.json` that the plots need.
#[derive(serde::Deserialize)]
struct StoredRun {
    scenario: String,
    store: String,
    broker: String,
    commit: Option<String>,
    #[serde(default)]
    steps: Vec<results::Step>,
    #[serde(default)]
    growth: Vec<results::GrowthPoint>,
}

/// `replot`: draws the plots of the run stored in `results` again.
fn replot(results: &Path, plot_dir: Option<&Path>) -> Result<()> {
    let text = std::fs::read_to_string(results)
        .with_context(|| format!("reading {}", results.display()))?;
    let stored: StoredRun =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", results.display()))?;
    let scenario = match stored.scenario.as_str() {
        "sync" => "sync",
        "async" => "async",
        "growth" => "growth",
        other => bail!("{}: no plot for a `{other}` run", results.display()),
    };
    let plot_dir = plot_dir
        .map(Path::to_path_buf)
        .or_else(|| results.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    std::fs::create_dir_all(&plot_dir)
        .with_context(|| format!("creating {}", plot_dir.display()))?;
    let run = Run {
        scenario,
        command: String::new(),
        date: String::new(),
        commit: stored.commit,
        store: stored.store,
        broker: stored.broker,
        binary: String::new(),
        cpus: 0,
        figures: results::Figures {
            steps: stored.steps,
            growth: stored.growth,
            ..Default::default()
        },
        log: String::new(),
    };
    draw(&run, &plot_dir)
}

/// What the system's environment gets for `scenario` (span timings for `hops`).
fn environment(scenario: &Scenario) -> Vec<(&'static str, &'static str)> {
    match scenario {
        Scenario::Hops(_) => hops::system_environment(),
        _ => Vec::new(),
    }
}

fn draw(run: &Run, plot_dir: &Path) -> Result<()> {
    let title = |what: &str| {
        format!(
            "{what}: {}, broker {} ({})",
            run.store,
            run.broker,
            run.commit.as_deref().unwrap_or("unknown commit")
        )
    };
    if run.scenario == "hops" {
        return Ok(());
    }
    let path = if run.scenario == "growth" {
        let path = plot_dir.join("growth.svg");
        plot::growth(&path, &title("growth"), &run.figures.growth)?;
        path
    } else {
        let path = plot_dir.join(format!("latency-{}.svg", run.scenario));
        plot::latency(&path, &title(run.scenario), &run.figures.steps)?;
        path
    };
    eprintln!("load: plot {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Figures, GrowthPoint, Step};

    fn point(stored: u64, per_second: f64, fresh: &[f64], ratio: Option<f64>) -> GrowthPoint {
        GrowthPoint {
            checkpoint: stored,
            stored,
            stored_after: stored,
            prefill_seconds: 0.0,
            prefill_inserted: 0,
            idle_seconds: 0.0,
            step: Step::at_rate(8, per_second),
            per_second_runs: vec![per_second],
            fresh_per_second_runs: fresh.to_vec(),
            ratio_to_fresh: ratio,
        }
    }

    /// Writes a growth run's `results.json` in a directory of its own, replots it and returns
    /// the plot's text.
    fn replotted(name: &str, growth: Vec<GrowthPoint>) -> String {
        let dir = std::env::temp_dir().join(format!("load-replot-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let run = Run::for_test(
            "growth",
            Figures {
                growth,
                ..Default::default()
            },
        );
        let results = dir.join("results.json");
        report::write_json(&run, &results).expect("results written");
        replot(&results, None).expect("replotted");
        let svg = std::fs::read_to_string(dir.join("growth.svg")).expect("the plot");
        std::fs::remove_dir_all(&dir).ok();
        svg
    }

    #[test]
    fn a_growth_run_against_fresh_stores_is_replotted_with_its_ratio() {
        let svg = replotted(
            "fresh",
            vec![
                point(0, 240.0, &[235.0], Some(1.02)),
                point(10_000, 250.0, &[270.0], Some(0.93)),
            ],
        );
        assert!(svg.contains("abc1234"), "the run's commit is in the title");
        assert!(svg.contains("fresh store (median)"));
        assert!(svg.contains("grown / fresh (median of pairs)"));
        assert!(svg.contains("goal 0.9"));
    }

    #[test]
    fn a_growth_run_without_fresh_stores_has_no_ratio_panel() {
        let svg = replotted(
            "plain",
            vec![point(0, 240.0, &[], None), point(10_000, 250.0, &[], None)],
        );
        assert!(svg.contains("requests per second"));
        assert!(!svg.contains("fresh store"));
        assert!(!svg.contains("grown / fresh"));
    }

    #[test]
    fn a_run_without_plots_is_refused() {
        let dir = std::env::temp_dir().join(format!("load-replot-hops-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let results = dir.join("results.json");
        std::fs::write(
            &results,
            r#"{"scenario": "hops", "store": "SQLite", "broker": "database", "commit": null}"#,
        )
        .expect("written");
        let error = replot(&results, None).expect_err("hops has no plot");
        assert!(error.to_string().contains("no plot"), "{error}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
