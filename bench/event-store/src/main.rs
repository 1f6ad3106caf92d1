//! `event-store-bench`: seedwork's PostgreSQL event store against cqrs-es + postgres-es, side
//! by side on the same PostgreSQL server, in one run.
//!
//! Both frameworks run the same aggregate (an account; one command, `Deposit`; one event type,
//! `Deposited`, a few fields stored as JSON; see `model.rs`) through the whole write path each
//! offers, without snapshots:
//! - seedwork: a unit of work from a `Bus`, `get_for_update` through an
//!   `EventSourcedRepository` on `seedwork_sqlx::PostgresStore`, the command raises one event,
//!   `add` (first command) or `update`, commit.
//! - cqrs-es: `CqrsFramework::execute` (`postgres_es::postgres_cqrs`: a
//!   `PostgresEventRepository`, no queries).
//!
//! Workloads, for each writer count of `--writers` (default `1,8`):
//! - append: W writers, each building `--aggregates` accounts (default 100) of 10 events: 10
//!   commands each, the first creates the account, each later one loads it and appends one
//!   event. Events appended/s and commands/s (one event per command, so the two are equal).
//! - load: on the accounts the append built, W readers each load `--loads` whole accounts
//!   (default 1000) round robin: seedwork's `Repository::get`, cqrs-es's `load_aggregate` (what
//!   `execute` does before it handles). Aggregates loaded/s.
//!
//! seedwork's event carries its `EventMetadata` (an id and a time) in its payload; cqrs-es
//! keeps metadata in a map apart, empty by default. `--cqrs-metadata` has cqrs-es store the
//! same id and time there (`execute_with_metadata`), for a comparison of the same information
//! stored.
//!
//! Each framework runs both workloads on emptied tables (truncated before its turn); the two
//! take turns at each writer count, the one that goes first alternating. `--rounds N`
//! (default 1) runs all of it N times and reports medians: the machine's speed drifts between
//! steps, and a ratio of two steps run one after the other drifts less than the figures. Before each measured
//! phase, `--warmup` accounts per writer (default 2) are built, and as many loaded per reader,
//! uncounted, so connections are open and statements prepared. Each phase is bounded by its
//! count and by `--max-seconds` (default 30): after it, no new account or load is started.
//! Every load checks the account has its 10 events, and the stored event count is checked
//! after each append.
//!
//! Meanwhile `pg_stat_activity` is sampled every `--sample-ms` (default 20; 0: off) from a
//! connection to the server's other database: what the benchmark's backends were doing
//! (running, waiting on a lock, waiting for the client inside a transaction). `--breakdown N`
//! then times N commands and N loads one at a time, piece by piece (see `breakdown.rs`).
//!
//! The database: `--database-url` (default the one `scripts/services up postgres` starts)
//! names the server and a database to connect to first; the benchmark runs in a database of
//! its own on that server, `--bench-database` (default `seedwork_bench`), created when missing,
//! so it never touches the tables the tests use. There seedwork's migrations make its tables,
//! and postgres-es's `events` and `snapshots` tables are created as that crate documents them.
//! Both frameworks get a pool of 16 connections (what `PostgresStore::connect` opens).
//!
//! This package is a workspace of its own (postgres-es's sqlx 0.8 and seedwork-sqlx's sqlx 0.9
//! would share one lock file otherwise, and their SQLite drivers one `links` key):
//!
//! ```text
//! scripts/services up postgres
//! cargo run --release --manifest-path bench/event-store/Cargo.toml -- --breakdown 1000
//! cargo run --release --manifest-path bench/event-store/Cargo.toml -- --frameworks seedwork
//! ```
//!
//! Output: a Markdown report on stdout (command, machine, server, versions, the figures of
//! both frameworks and their ratios); progress on stderr.

mod breakdown;
mod drive;
mod model;
mod report;
mod sides;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use seedwork_sqlx::PostgresStore;
use sqlx08::postgres::PgPoolOptions;
use sqlx08::PgPool;

use crate::drive::{Measured, Sampler};
use crate::report::{Report, Server, Step};
use crate::sides::{CqrsSide, Framework, SeedworkSide, Side};

/// Events per aggregate: the issue's "aggregate of 10 events".
const EVENTS: u64 = 10;

/// Connections in each framework's pool (`PostgresStore::connect`'s size).
const POOL: u32 = 16;

/// postgres-es's tables, as its repository's `db/init.sql` defines them.
const POSTGRES_ES_TABLES: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS events (
        aggregate_type text NOT NULL,
        aggregate_id text NOT NULL,
        sequence bigint CHECK (sequence >= 0) NOT NULL,
        event_type text NOT NULL,
        event_version text NOT NULL,
        payload json NOT NULL,
        metadata json NOT NULL,
        PRIMARY KEY (aggregate_type, aggregate_id, sequence))",
    "CREATE TABLE IF NOT EXISTS snapshots (
        aggregate_type text NOT NULL,
        aggregate_id text NOT NULL,
        last_sequence bigint CHECK (last_sequence >= 0) NOT NULL,
        current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
        payload json NOT NULL,
        PRIMARY KEY (aggregate_type, aggregate_id, last_sequence))",
];

/// seedwork's PostgreSQL event store against cqrs-es + postgres-es: append and load
/// throughput, side by side in one run.
#[derive(Debug, Parser)]
#[command(name = "event-store-bench", version)]
pub struct Cli {
    /// The PostgreSQL server, and a database on it to connect to first (the benchmark runs in
    /// `--bench-database` on the same server).
    #[arg(
        long,
        default_value = "postgres://seedwork:seedwork@127.0.0.1:5432/seedwork"
    )]
    pub database_url: String,
    /// The database the benchmark runs in (created when missing; its tables are emptied).
    #[arg(long, default_value = "seedwork_bench")]
    pub bench_database: String,
    /// Accounts each writer builds in the append workload (10 events each).
    #[arg(long, default_value_t = 100)]
    pub aggregates: usize,
    /// Writer counts (and reader counts for the load workload), one step each (above 16,
    /// writers wait for the pools' 16 connections).
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    pub writers: Vec<usize>,
    /// Whole-account loads each reader makes in the load workload.
    #[arg(long, default_value_t = 1000)]
    pub loads: usize,
    /// Accounts each writer builds (and loads each reader makes) before a measured phase,
    /// not counted.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Time bound of each measured phase, in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub max_seconds: f64,
    /// Interval of the `pg_stat_activity` sampler, in milliseconds (0: no sampling).
    #[arg(long, default_value_t = 20)]
    pub sample_ms: u64,
    /// After the steps, time this many commands and loads one at a time, piece by piece
    /// (seedwork's unit of work, `get_for_update`, append, commit; its snapshot lookup and
    /// event read), on emptied tables (0: no breakdown).
    #[arg(long, default_value_t = 0)]
    pub breakdown: usize,
    /// How many times to run every step: on a shared machine whose speed drifts, the median
    /// of the rounds' ratios (each from two steps run one after the other) is steadier than
    /// one round's.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// cqrs-es stores each event's id and time in its metadata map, the information seedwork's
    /// event carries in its payload (off: cqrs-es with no metadata, as `execute` runs).
    #[arg(long)]
    pub cqrs_metadata: bool,
    /// The frameworks to run (both for the comparison; one alone is for profiling it).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "seedwork,cqrs-es"
    )]
    pub frameworks: Vec<Framework>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("event-store-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let cli = Cli::parse();
    check(&cli)?;
    let limit = Duration::from_secs_f64(cli.max_seconds);
    let started = Instant::now();

    let admin = PgPoolOptions::new()
        .max_connections(2)
        .connect(&cli.database_url)
        .await
        .context("connecting to --database-url")?;
    let server = Server::describe(&admin).await?;
    ensure_database(&admin, &cli.bench_database).await?;
    let bench_url = with_database(&cli.database_url, &cli.bench_database)?;

    let harness = PgPoolOptions::new()
        .max_connections(2)
        .connect(&bench_url)
        .await
        .with_context(|| format!("connecting to database {}", cli.bench_database))?;
    for ddl in POSTGRES_ES_TABLES {
        sqlx08::query(ddl)
            .execute(&harness)
            .await
            .context("creating postgres-es's tables")?;
    }
    let store = PostgresStore::connect(&bench_url)
        .await
        .context("seedwork: connecting")?;
    store.migrate().await.context("seedwork: migrating")?;
    let cqrs_pool = PgPoolOptions::new()
        .max_connections(POOL)
        .connect(&bench_url)
        .await
        .context("postgres-es: connecting")?;
    let seedwork = Arc::new(Side::Seedwork(SeedworkSide::new(&store)?));
    let cqrs = Arc::new(Side::CqrsEs(Box::new(CqrsSide::new(
        &cqrs_pool,
        cli.cqrs_metadata,
    ))));
    let round_trip = round_trip(&harness).await?;
    let sampler = (cli.sample_ms > 0).then(|| {
        Sampler::new(
            admin.clone(),
            &cli.bench_database,
            Duration::from_millis(cli.sample_ms),
        )
    });

    let load_before = load_average();
    let mut steps = Vec::new();
    let mut turn = 0;
    for round in 1..=cli.rounds {
        for &writers in &cli.writers {
            let mut order = [&seedwork, &cqrs];
            if turn % 2 == 1 {
                order.reverse();
            }
            turn += 1;
            for side in order {
                if cli.frameworks.contains(&side.framework()) {
                    let mut done =
                        step(&cli, &harness, side, writers, limit, sampler.as_ref()).await?;
                    done.round = round;
                    steps.push(done);
                }
            }
        }
    }

    let breakdown = if cli.breakdown > 0 {
        eprintln!("event-store-bench: breakdown, one at a time");
        for framework in [Framework::Seedwork, Framework::CqrsEs] {
            for sql in framework.reset_sql() {
                sqlx08::query(sql).execute(&harness).await?;
            }
        }
        Some(breakdown::measure(&store, &cqrs_pool, cli.breakdown, cli.breakdown, EVENTS).await?)
    } else {
        None
    };

    let report = Report {
        command: command_line(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        server,
        bench_database: cli.bench_database.clone(),
        round_trip,
        aggregates: cli.aggregates,
        loads: cli.loads,
        events: EVENTS,
        sample_ms: cli.sample_ms,
        rounds: cli.rounds,
        cqrs_metadata: cli.cqrs_metadata,
        steps,
        took: started.elapsed(),
        load_average: (load_before, load_average()),
        breakdown,
    };
    print!("{}", report.markdown());
    store.close().await;
    cqrs_pool.close().await;
    harness.close().await;
    admin.close().await;
    Ok(())
}

/// Refuses what the benchmark cannot run: a URL of another database, empty counts.
fn check(cli: &Cli) -> Result<()> {
    let scheme = cli
        .database_url
        .split_once("://")
        .map_or("", |(scheme, _)| scheme);
    if !matches!(
        scheme.to_ascii_lowercase().as_str(),
        "postgres" | "postgresql"
    ) {
        bail!(
            "--database-url must be a PostgreSQL URL (postgres://user:password@host:port/database); \
             got a `{scheme}` URL: this benchmark compares PostgreSQL event stores only"
        );
    }
    ensure!(
        !cli.bench_database.is_empty()
            && cli
                .bench_database
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "--bench-database must be a plain name (a-z, 0-9, _), got `{}`",
        cli.bench_database
    );
    ensure!(
        !cli.writers.is_empty() && cli.writers.iter().all(|&w| (1..=64).contains(&w)),
        "--writers takes counts from 1 to 64"
    );
    ensure!(!cli.frameworks.is_empty(), "--frameworks names none");
    ensure!(
        (1..=100).contains(&cli.rounds),
        "--rounds takes a count from 1 to 100"
    );
    ensure!(
        cli.aggregates > 0 && cli.loads > 0,
        "--aggregates and --loads must be positive"
    );
    ensure!(
        cli.max_seconds > 0.0 && cli.max_seconds.is_finite(),
        "--max-seconds must be positive"
    );
    Ok(())
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .context("--database-url has no scheme")?;
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let authority = before_query
        .split_once('/')
        .map_or(before_query, |(authority, _)| authority);
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    Ok(format!("{scheme}://{authority}/{database}{query}"))
}

/// Creates `database` on the server unless it exists.
async fn ensure_database(admin: &PgPool, database: &str) -> Result<()> {
    let exists: Option<i32> = sqlx08::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(database)
        .fetch_optional(admin)
        .await
        .context("looking for the benchmark database")?;
    if exists.is_none() {
        eprintln!("event-store-bench: creating database {database}");
        // `database` is checked to be a plain name in `check`.
        sqlx08::query(&format!("CREATE DATABASE {database}"))
            .execute(admin)
            .await
            .with_context(|| format!("creating database {database}"))?;
    }
    Ok(())
}

/// The median time of `SELECT 1` on one pooled connection: the floor of every statement.
async fn round_trip(pool: &PgPool) -> Result<Duration> {
    let mut connection = pool.acquire().await?;
    let mut times = Vec::with_capacity(200);
    for _ in 0..200 {
        let begun = Instant::now();
        sqlx08::query("SELECT 1").execute(&mut *connection).await?;
        times.push(begun.elapsed());
    }
    times.sort_unstable();
    Ok(times[times.len() / 2])
}

/// One framework at one writer count: emptied tables, append (after its warm-up), the stored
/// count checked, `ANALYZE`, load (after its warm-up).
async fn step(
    cli: &Cli,
    harness: &PgPool,
    side: &Arc<Side>,
    writers: usize,
    limit: Duration,
    sampler: Option<&Sampler>,
) -> Result<Step> {
    let framework = side.framework();
    eprintln!(
        "event-store-bench: {} with {writers} writer(s)",
        framework.label()
    );
    for sql in framework.reset_sql() {
        sqlx08::query(sql)
            .execute(harness)
            .await
            .with_context(|| format!("emptying {}'s tables", framework.label()))?;
    }
    let (warm, _) = drive::append(side, writers, cli.warmup, EVENTS, limit, None).await?;
    let (append, ids) =
        drive::append(side, writers, cli.aggregates, EVENTS, limit, sampler).await?;
    let stored: i64 = sqlx08::query_scalar(&format!(
        "SELECT COUNT(*) FROM {}",
        framework.events_table()
    ))
    .fetch_one(harness)
    .await?;
    let expected = warm.events + append.events;
    ensure!(
        stored == expected as i64,
        "{}: {stored} events stored, {expected} appended",
        framework.label()
    );
    report_phase(framework, "append", writers, &append);
    sqlx08::query(&format!("ANALYZE {}", framework.events_table()))
        .execute(harness)
        .await?;

    let ids = Arc::new(ids);
    drive::load(side, writers, &ids, cli.warmup, EVENTS, limit, None).await?;
    let load = drive::load(side, writers, &ids, cli.loads, EVENTS, limit, sampler).await?;
    report_phase(framework, "load", writers, &load);
    Ok(Step {
        round: 1,
        framework,
        writers,
        stored: stored as u64,
        append,
        load,
    })
}

fn report_phase(framework: Framework, workload: &str, writers: usize, measured: &Measured) {
    eprintln!(
        "event-store-bench:   {workload}: {} operations in {:.2} s ({:.0}/s){}",
        measured.operations,
        measured.elapsed.as_secs_f64(),
        measured.per_second(measured.operations),
        if measured.cut_short {
            format!(
                " [cut short by --max-seconds; {} {writers}]",
                framework.label()
            )
        } else {
            String::new()
        }
    );
}

/// The 1-minute load average (`/proc/loadavg`), when there is one.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The command line, with the password of any URL masked.
fn command_line() -> String {
    std::env::args()
        .skip(1)
        .map(|arg| match (arg.find("://"), arg.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &arg[scheme + 3..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => format!("{}{user}:***{}", &arg[..scheme + 3], &arg[at..]),
                    None => arg,
                }
            }
            _ => arg,
        })
        .collect::<Vec<_>>()
        .join(" ")
}
