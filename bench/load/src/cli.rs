//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Load benchmark of the AlpesPartners example (runs its release binary as a child process).
#[derive(Debug, Parser)]
#[command(name = "load", version)]
pub struct Cli {
    /// What to measure.
    #[command(subcommand)]
    pub scenario: Scenario,
    /// The system under test.
    #[command(flatten)]
    pub system: SystemArgs,
    /// Where the results go.
    #[command(flatten)]
    pub output: OutputArgs,
    /// Repeated runs, against another binary.
    #[command(flatten)]
    pub rounds: RoundsArgs,
}

/// `sync` and `async` several times, alternating with a baseline binary (see `compare.rs`).
/// Each run writes its results and plots into `round-K-candidate/` or `round-K-baseline/` of
/// the out directory (`--plot-dir` is not used), and the comparison into `comparison.md`.
#[derive(Debug, Clone, Args)]
pub struct RoundsArgs {
    /// How many times to run the scenario (with `--baseline`, how many pairs of runs).
    #[arg(long, global = true, default_value_t = 1)]
    pub rounds: usize,
    /// A second binary (e.g. built from another commit), run alternately with `--binary`; the
    /// report gives the median of the rounds' `--binary` / `--baseline` ratios.
    #[arg(long, global = true)]
    pub baseline: Option<PathBuf>,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// `POST /vuelos/reserva` (synchronous create) at each connection count.
    Sync(StepArgs),
    /// `POST /vuelos/reserva-comando` (202, then outbox → broker → consumer) at each
    /// connection count, with the consumer's rate and drain time.
    Async(AsyncArgs),
    /// Throughput and p99 of `sync` against the number of stored reservations.
    Growth(GrowthArgs),
    /// Where the time of one request goes: the system's span timings and the store's
    /// timestamps, one request at a time, synchronous then asynchronous.
    Hops(HopsArgs),
    /// Draws a finished run's plots again from its `results.json` (no system is started):
    /// into `--plot-dir`, by default the directory of the file.
    Replot(ReplotArgs),
}

impl Scenario {
    /// Its name, as in the file names and the report.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Sync(_) => "sync",
            Scenario::Async(_) => "async",
            Scenario::Growth(_) => "growth",
            Scenario::Hops(_) => "hops",
            Scenario::Replot(_) => "replot",
        }
    }
}

/// The load steps of `sync` and `async`.
#[derive(Debug, Clone, Args)]
pub struct StepArgs {
    /// Connection counts, one step each (each connection sends one request at a time).
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    pub connections: Vec<usize>,
    /// Measured seconds per step.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before each step's measurement (not counted).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Safety cap on the requests one step sends (warm-up included).
    #[arg(long, default_value_t = 1_000_000)]
    pub max_requests: u64,
    /// Seconds before one request counts as a transport error.
    #[arg(long, default_value_t = 30.0)]
    pub request_timeout: f64,
}

/// `async`: the steps, the drain bound and the one-at-a-time latency probe.
#[derive(Debug, Clone, Args)]
pub struct AsyncArgs {
    /// The load steps.
    #[command(flatten)]
    pub steps: StepArgs,
    /// Seconds to wait after a step for every accepted command to be executed.
    #[arg(long, default_value_t = 120.0)]
    pub drain_timeout: f64,
    /// After the steps, this many one-at-a-time requests timing 202 → reservation visible
    /// (0 skips it).
    #[arg(long, default_value_t = 50)]
    pub notify_latency: u32,
}

/// `growth`: prefill to each checkpoint, then measure.
#[derive(Debug, Clone, Args)]
pub struct GrowthArgs {
    /// The last checkpoint: stored reservations.
    #[arg(long, default_value_t = 50_000)]
    pub rows: u64,
    /// Distance between checkpoints (the first is the empty store).
    #[arg(long, default_value_t = 10_000)]
    pub checkpoint_every: u64,
    /// Connections that insert the prefill.
    #[arg(long, default_value_t = 64)]
    pub prefill_connections: usize,
    /// Connections of each measurement (`sync`).
    #[arg(long, default_value_t = 8)]
    pub measure_connections: usize,
    /// Measured seconds per checkpoint.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Seconds of load before each measurement (not counted).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Measurements per checkpoint, each after the system is quiet again; the point is their
    /// median (one run's spread on a shared machine is wider than the decay to be seen).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Also start a second system on a fresh store and measure it right after each
    /// measurement of the growing one: each pair ran in the same moments of the machine, so
    /// their ratio (grown / fresh) shows the decay where this machine's swings in speed hide
    /// it in the req/s themselves.
    #[arg(long)]
    pub against_fresh: bool,
    /// Safety cap on the requests of one prefill or one measurement.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_requests: u64,
    /// Seconds allowed for one prefill.
    #[arg(long, default_value_t = 900.0)]
    pub prefill_timeout: f64,
    /// Seconds before one request counts as a transport error.
    #[arg(long, default_value_t = 30.0)]
    pub request_timeout: f64,
}

/// `replot`: which run.
#[derive(Debug, Clone, Args)]
pub struct ReplotArgs {
    /// The run's `results.json`.
    pub results: PathBuf,
}

/// `hops`: how many requests, and whose handling ends the asynchronous path.
#[derive(Debug, Clone, Args)]
pub struct HopsArgs {
    /// Measured requests of each kind.
    #[arg(long, default_value_t = 200)]
    pub requests: u32,
    /// Requests of each kind before measuring (not counted).
    #[arg(long, default_value_t = 20)]
    pub warmup: u32,
    /// The subscription whose inbox entry for the reservation's event ends the asynchronous
    /// path (the example's notifier).
    #[arg(long, default_value = "sub-notificacion-eventos-reservas")]
    pub notified_by: String,
    /// Seconds one request may take to be answered.
    #[arg(long, default_value_t = 30.0)]
    pub request_timeout: f64,
    /// Seconds one asynchronous request (and the quiet before each part) may take.
    #[arg(long, default_value_t = 60.0)]
    pub idle_timeout: f64,
}

/// The system under test.
#[derive(Debug, Clone, Args)]
pub struct SystemArgs {
    /// The example binary (default: `release/examples/alpespartners` in the target directory).
    #[arg(long, global = true)]
    pub binary: Option<PathBuf>,
    /// `sqlite` (a fresh file in a temporary directory) or `postgres://…` (a fresh schema in
    /// that database, dropped at the end).
    #[arg(long, global = true, default_value = "sqlite")]
    pub database: String,
    /// `database`, `memory` or `pulsar://HOST:6650` (needs the binary built with
    /// `--features pulsar`).
    #[arg(long, global = true, default_value = "database")]
    pub broker: String,
    /// `--sagas on|off` for the system (whether each created reservation runs the
    /// reservation saga). Not passed when absent, so a binary older than the saga still starts;
    /// the figures in docs/performance.md before the saga were taken without it.
    #[arg(long, global = true)]
    pub sagas: Option<String>,
    /// Before each start of the system, clear the backlog of every subscription in the
    /// broker's `public/default` namespace through this admin URL (e.g.
    /// `http://127.0.0.1:8080`): the system's durable subscriptions outlive a run's fresh
    /// store, so without it a run first works through what earlier runs left (a saga-off run
    /// leaves the saga's subscription its messages). Destructive: for a broker of its own.
    #[arg(long, global = true, value_name = "ADMIN_URL")]
    pub clear_pulsar_backlog: Option<String>,
    /// Keep the PostgreSQL schema after the run.
    #[arg(long, global = true)]
    pub keep_schema: bool,
    /// Seconds to wait for `GET /health` to answer 200.
    #[arg(long, global = true, default_value_t = 60.0)]
    pub startup_timeout: f64,
}

/// Where the results go.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// The JSON results and the system's log (default: `load/<timestamp>` in the target
    /// directory).
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
    /// The SVG plots (default: the out directory).
    #[arg(long, global = true)]
    pub plot_dir: Option<PathBuf>,
}

/// Seconds from the command line as a [`Duration`] (negative or not finite: zero).
pub fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_a_comma_separated_list() {
        let cli = Cli::try_parse_from(["load", "sync", "--connections", "1,8", "--duration", "3"])
            .unwrap();
        let Scenario::Sync(steps) = cli.scenario else {
            panic!("sync")
        };
        assert_eq!(steps.connections, vec![1, 8]);
        assert_eq!(steps.duration, 3.0);
    }

    #[test]
    fn system_options_go_after_the_scenario_too() {
        let cli = Cli::try_parse_from(["load", "async", "--broker", "memory"]).unwrap();
        assert_eq!(cli.system.broker, "memory");
        assert_eq!(cli.scenario.name(), "async");
        assert_eq!(
            cli.system.clear_pulsar_backlog, None,
            "not cleared unless asked"
        );
        let cli = Cli::try_parse_from([
            "load",
            "hops",
            "--broker",
            "pulsar://127.0.0.1:6650",
            "--clear-pulsar-backlog",
            "http://127.0.0.1:8080",
        ])
        .unwrap();
        assert_eq!(
            cli.system.clear_pulsar_backlog.as_deref(),
            Some("http://127.0.0.1:8080")
        );
    }

    #[test]
    fn bad_seconds_are_zero() {
        assert_eq!(seconds(-1.0), Duration::ZERO);
        assert_eq!(seconds(f64::NAN), Duration::ZERO);
        assert_eq!(seconds(1.5), Duration::from_millis(1500));
    }
}
