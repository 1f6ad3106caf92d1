//! The scenarios: the steps of `sync` and `async`, and the checkpoints of `growth`.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cli::{self, AsyncArgs, GrowthArgs, Scenario, StepArgs};
use crate::drive::{self, Endpoint, Plan, Target};
use crate::results::{Created, Figures, GrowthPoint, Queue, Settled, Step};
use crate::stats;
use crate::store::Store;
use crate::system::System;

/// How often the stored reservations are counted during `async`.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// How long the "202 → created" probe waits for one reservation.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `scenario` against the running system.
/// How to start a system on a fresh store (`growth --against-fresh`): what the measured one
/// was started with.
pub struct FreshSystems<'a> {
    /// The system's options.
    pub args: &'a crate::cli::SystemArgs,
    /// The binary.
    pub binary: &'a std::path::Path,
    /// Where each fresh system's log goes (a directory per checkpoint beneath).
    pub out_dir: &'a std::path::Path,
    /// Its environment.
    pub environment: &'a [(&'a str, &'a str)],
}

impl FreshSystems<'_> {
    async fn start(&self, checkpoint: u64) -> Result<System> {
        let dir = self.out_dir.join(format!("fresh-{checkpoint}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        System::start(self.args, self.binary, &dir, self.environment).await
    }
}

pub async fn run(
    scenario: &Scenario,
    system: &mut System,
    fresh: Option<&FreshSystems<'_>>,
) -> Result<Figures> {
    let mut figures = Figures {
        rss_idle_kib: system.rss_kib(),
        ..Figures::default()
    };
    match scenario {
        Scenario::Sync(args) => figures.steps = sync(args, system).await?,
        Scenario::Async(args) => {
            let target = Target::new(&system.base_url, cli::seconds(args.steps.request_timeout))?;
            figures.steps = asynchronous(args, system, &target).await?;
            figures.rss_after_kib = system.rss_kib();
            if args.notify_latency > 0 {
                figures.created_latency = Some(created(args, system, &target).await?);
            }
        }
        Scenario::Growth(args) => figures.growth = growth(args, system, fresh).await?,
        Scenario::Hops(args) => figures.hops = crate::hops::run(args, system).await?,
        Scenario::Replot(_) => anyhow::bail!("replot measures nothing"),
    }
    if figures.rss_after_kib.is_none() {
        figures.rss_after_kib = system.rss_kib();
    }
    Ok(figures)
}

fn check_connections(connections: &[usize]) -> Result<()> {
    if connections.is_empty() || connections.contains(&0) {
        bail!("--connections needs counts of at least 1, e.g. 1,8,64");
    }
    Ok(())
}

fn plan(args: &StepArgs, connections: usize) -> Plan {
    Plan::timed(
        connections,
        cli::seconds(args.warmup),
        cli::seconds(args.duration),
        args.max_requests,
    )
}

fn announce(scenario: &str, args: &StepArgs, connections: usize) {
    eprintln!(
        "{scenario}: {connections} connection(s), {} s warm-up + {} s measured",
        args.warmup, args.duration
    );
}

async fn sync(args: &StepArgs, system: &mut System) -> Result<Vec<Step>> {
    check_connections(&args.connections)?;
    let target = Target::new(&system.base_url, cli::seconds(args.request_timeout))?;
    let mut steps = Vec::new();
    for &connections in &args.connections {
        announce("sync", args, connections);
        steps.push(measure_sync(system, &target, plan(args, connections)).await?);
    }
    Ok(steps)
}

/// Counts every [`SAMPLE_EVERY`] until `until`, into `samples` (seconds since `origin`).
async fn sample_until(
    store: &Store,
    origin: Instant,
    until: Instant,
    samples: &mut Vec<(f64, u64)>,
) -> Result<()> {
    loop {
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        samples.push((origin.elapsed().as_secs_f64(), store.reservations().await?));
        tokio::time::sleep_until((now + SAMPLE_EVERY).min(until).into()).await;
    }
}

/// Counts now, into `samples` too.
async fn sample(store: &Store, origin: Instant, samples: &mut Vec<(f64, u64)>) -> Result<u64> {
    let count = store.reservations().await?;
    samples.push((origin.elapsed().as_secs_f64(), count));
    Ok(count)
}

async fn asynchronous(args: &AsyncArgs, system: &mut System, target: &Target) -> Result<Vec<Step>> {
    let steps_args = &args.steps;
    check_connections(&steps_args.connections)?;
    // Every accepted command of the run, and what was stored before: the store drains when
    // it holds both.
    let mut expected = system.store.reservations().await?;
    let mut steps = Vec::new();
    for &connections in &steps_args.connections {
        announce("async", steps_args, connections);
        let plan = plan(steps_args, connections);
        let cpu_before = system.cpu();
        let origin = Instant::now();
        let running = drive::start(target, Endpoint::Async, plan);
        let store = &system.store;
        let mut samples = Vec::new();
        sample_until(store, origin, plan.warm_end, &mut samples).await?;
        let (window_start, stored_at_start) =
            (Instant::now(), sample(store, origin, &mut samples).await?);
        sample_until(store, origin, plan.end, &mut samples).await?;
        let (window_end, stored_at_end) =
            (Instant::now(), sample(store, origin, &mut samples).await?);
        let outcome = running.finish().await?;
        expected += outcome.tally.ok_total;
        let executed_per_second = stats::rate(
            stored_at_end.saturating_sub(stored_at_start),
            window_end - window_start,
        );
        eprintln!(
            "async: {} accepted, waiting for the consumer (at most {} s)",
            outcome.tally.ok_total, args.drain_timeout
        );
        let deadline = outcome.finished + cli::seconds(args.drain_timeout);
        let (drain_seconds, backlog) = loop {
            let stored = sample(store, origin, &mut samples).await?;
            if stored >= expected {
                break (Some(outcome.finished.elapsed().as_secs_f64()), 0);
            }
            if Instant::now() >= deadline {
                break (None, expected - stored);
            }
            tokio::time::sleep(SAMPLE_EVERY).await;
        };
        // Until the events are handled too, so the CPU time is the whole path's, and the
        // next step starts on a quiet system.
        if drain_seconds.is_some() {
            system
                .store
                .wait_idle(cli::seconds(args.drain_timeout))
                .await?;
        }
        let cpu_after = system.cpu();
        system.ensure_running()?;
        let mut step = Step::of(connections, &outcome);
        step.cpu = Some(crate::cpu::per_request(
            &cpu_before,
            &cpu_after,
            outcome.tally.ok_total,
        ));
        step.queue = Some(Queue {
            accepted: outcome.tally.ok_total,
            accepted_per_second: step.per_second,
            executed_per_second,
            drain_seconds,
            backlog,
            samples,
        });
        steps.push(step);
    }
    Ok(steps)
}

async fn created(args: &AsyncArgs, system: &mut System, target: &Target) -> Result<Created> {
    // The drain only waits for the reservations; their events may still be in the outbox, and
    // a probe's command would queue behind them there.
    let quiet = system
        .store
        .wait_idle(cli::seconds(args.drain_timeout))
        .await?;
    eprintln!("async: quiet {:.2} s after the drain", quiet.as_secs_f64());
    eprintln!(
        "async: 202 → created, {} request(s) one at a time",
        args.notify_latency
    );
    let probe = drive::created_latency(target, args.notify_latency, PROBE_TIMEOUT).await;
    system.ensure_running()?;
    Ok(Created {
        requests: probe.requests,
        refused: probe.refused,
        not_seen: probe.not_seen,
        latency: stats::summarize(&probe.latency),
    })
}

/// The checkpoints of `growth`: the empty store, then every `every` up to `rows` (`rows`
/// itself included).
pub fn checkpoints(rows: u64, every: u64) -> Vec<u64> {
    let mut points = vec![0];
    if every == 0 {
        if rows > 0 {
            points.push(rows);
        }
        return points;
    }
    let mut next = every;
    while next < rows {
        points.push(next);
        next += every;
    }
    if rows > 0 {
        points.push(rows);
    }
    points
}

async fn growth(
    args: &GrowthArgs,
    system: &mut System,
    fresh_systems: Option<&FreshSystems<'_>>,
) -> Result<Vec<GrowthPoint>> {
    if args.prefill_connections == 0 || args.measure_connections == 0 {
        bail!("--prefill-connections and --measure-connections need at least 1");
    }
    let target = Target::new(&system.base_url, cli::seconds(args.request_timeout))?;
    let mut points = Vec::new();
    for checkpoint in checkpoints(args.rows, args.checkpoint_every) {
        let (prefill_seconds, prefill_inserted) =
            prefill(args, system, &target, checkpoint).await?;
        // The prefill's messages are still being relayed and handled: measure a quiet system.
        let idle_seconds = system
            .store
            .wait_idle(cli::seconds(args.prefill_timeout))
            .await?
            .as_secs_f64();
        let stored = system.store.reservations().await?;
        let mut runs = Vec::new();
        let mut fresh_runs = Vec::new();
        // A new one per checkpoint: its own measurements add reservations, and it must stay
        // near empty.
        let mut fresh = match fresh_systems {
            Some(systems) => {
                let fresh = systems.start(checkpoint).await?;
                let fresh_target =
                    Target::new(&fresh.base_url, cli::seconds(args.request_timeout))?;
                Some((fresh, fresh_target))
            }
            None => None,
        };
        for run in 1..=args.repeat.max(1) {
            eprintln!(
                "growth: at {checkpoint}, run {run}/{}: {} connection(s), {} s warm-up + {} s measured",
                args.repeat.max(1),
                args.measure_connections,
                args.warmup,
                args.duration
            );
            runs.push(measure_when_idle(args, system, &target).await?);
            if let Some((fresh_system, fresh_target)) = fresh.as_mut() {
                eprintln!("growth: at {checkpoint}, run {run}: the fresh system");
                match measure_when_idle(args, fresh_system, fresh_target).await {
                    Ok(step) => fresh_runs.push(step.per_second),
                    Err(error) => {
                        if let Some((fresh_system, _)) = fresh.take() {
                            let _ = fresh_system.stop().await;
                        }
                        return Err(error);
                    }
                }
            }
        }
        if let Some((fresh, _)) = fresh {
            fresh.stop().await?;
        }
        let stored_after = system.store.reservations().await?;
        let per_second_runs: Vec<f64> = runs.iter().map(|s| s.per_second).collect();
        let ratio_to_fresh = median_ratio(&per_second_runs, &fresh_runs);
        let step = median_by_rate(runs);
        points.push(GrowthPoint {
            checkpoint,
            stored,
            stored_after,
            prefill_seconds,
            prefill_inserted,
            idle_seconds,
            step,
            per_second_runs,
            fresh_per_second_runs: fresh_runs,
            ratio_to_fresh,
        });
    }
    Ok(points)
}

/// The median of `grown[i] / fresh[i]` over the pairs (the upper one of an even count);
/// `None` without pairs or with a fresh rate of zero.
fn median_ratio(grown: &[f64], fresh: &[f64]) -> Option<f64> {
    let ratios: Vec<f64> = grown
        .iter()
        .zip(fresh)
        .map(|(g, f)| (*f > 0.0).then(|| g / f))
        .collect::<Option<_>>()?;
    crate::stats::median(&ratios)
}

/// The measurement with the median req/s (the upper one of an even count).
fn median_by_rate(mut runs: Vec<Step>) -> Step {
    runs.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
    let middle = runs.len() / 2;
    runs.swap_remove(middle)
}

/// [`measure`] once no message of `system` is on its way.
async fn measure_when_idle(
    args: &GrowthArgs,
    system: &mut System,
    target: &Target,
) -> Result<Step> {
    system
        .store
        .wait_idle(cli::seconds(args.prefill_timeout))
        .await?;
    measure(args, system, target).await
}

/// One `sync` measurement of `growth`.
async fn measure(args: &GrowthArgs, system: &mut System, target: &Target) -> Result<Step> {
    let plan = Plan::timed(
        args.measure_connections,
        cli::seconds(args.warmup),
        cli::seconds(args.duration),
        args.max_requests,
    );
    measure_sync(system, target, plan).await
}

/// Drives `plan` against the synchronous endpoint: its figures, with the CPU time per
/// answered request.
async fn measure_sync(system: &mut System, target: &Target, plan: Plan) -> Result<Step> {
    let writer_before = crate::writer::sample(&system.base_url).await;
    let before = system.cpu();
    let outcome = drive::start(target, Endpoint::Sync, plan).finish().await?;
    let after = system.cpu();
    let writer_after = crate::writer::sample(&system.base_url).await;
    system.ensure_running()?;
    let mut step = Step::of(plan.connections, &outcome);
    step.writer = writer_before
        .zip(writer_after)
        .and_then(|(before, after)| crate::writer::between(&before, &after));
    step.cpu = Some(crate::cpu::per_request(
        &before,
        &after,
        outcome.tally.ok_total,
    ));
    let quiet = system.store.wait_idle(SETTLE_TIMEOUT).await?;
    step.settled = Some(Settled {
        seconds: quiet.as_secs_f64(),
        cpu: crate::cpu::per_request(&before, &system.cpu(), outcome.tally.ok_total),
    });
    Ok(step)
}

/// How long a `sync` step's background work may take to finish after its window (the run
/// fails after that: the system is not keeping up at all).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Inserts reservations until the store holds `checkpoint`; the seconds it took and how many
/// it inserted.
async fn prefill(
    args: &GrowthArgs,
    system: &mut System,
    target: &Target,
    checkpoint: u64,
) -> Result<(f64, u64)> {
    let started = Instant::now();
    let deadline = started + cli::seconds(args.prefill_timeout);
    let mut inserted = 0;
    let mut stored = system.store.reservations().await?;
    if stored < checkpoint {
        eprintln!(
            "growth: prefill {stored} → {checkpoint} with {} connections",
            args.prefill_connections
        );
    }
    while stored < checkpoint {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "the prefill to {checkpoint} did not finish within {} s (the store holds \
                 {stored}); raise --prefill-timeout",
                args.prefill_timeout
            );
        }
        let count = (checkpoint - stored).min(args.max_requests);
        let outcome = drive::start(
            target,
            Endpoint::Sync,
            Plan::counted(args.prefill_connections, count, left),
        )
        .finish()
        .await?;
        system.ensure_running()?;
        if outcome.tally.ok_total == 0 {
            bail!(
                "the prefill inserted nothing: {} transport error(s){}, other answers {:?}",
                outcome.tally.errors,
                outcome
                    .tally
                    .first_error
                    .as_deref()
                    .map(|e| format!(" (first: {e})"))
                    .unwrap_or_default(),
                outcome.tally.statuses
            );
        }
        inserted += outcome.tally.ok_total;
        stored = system.store.reservations().await?;
    }
    Ok((started.elapsed().as_secs_f64(), inserted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step_at(per_second: f64) -> Step {
        Step::at_rate(8, per_second)
    }

    #[test]
    fn a_growth_point_is_its_median_run() {
        let rates = |runs: &[f64]| median_by_rate(runs.iter().map(|r| step_at(*r)).collect());
        assert_eq!(rates(&[700.0, 500.0, 600.0]).per_second, 600.0);
        assert_eq!(rates(&[500.0]).per_second, 500.0);
        assert_eq!(rates(&[800.0, 500.0, 600.0, 700.0]).per_second, 700.0);
    }

    #[test]
    fn the_ratio_to_fresh_is_the_median_of_the_pairs() {
        // Pairs 0.5, 1.0, 0.8: the median pair, not the ratio of the medians (0.8 / 2.0).
        assert_eq!(
            median_ratio(&[100.0, 300.0, 80.0], &[200.0, 300.0, 100.0]),
            Some(0.8)
        );
        assert_eq!(median_ratio(&[100.0], &[]), None);
        assert_eq!(median_ratio(&[100.0], &[0.0]), None);
    }

    #[test]
    fn checkpoints_start_empty_and_end_at_rows() {
        assert_eq!(
            checkpoints(50_000, 10_000),
            vec![0, 10_000, 20_000, 30_000, 40_000, 50_000]
        );
        assert_eq!(checkpoints(2_500, 1_000), vec![0, 1_000, 2_000, 2_500]);
        assert_eq!(checkpoints(0, 1_000), vec![0]);
        assert_eq!(checkpoints(500, 0), vec![0, 500]);
    }

    #[test]
    fn no_step_without_connections() {
        assert!(check_connections(&[]).is_err());
        assert!(check_connections(&[1, 0]).is_err());
        assert!(check_connections(&[1, 8]).is_ok());
    }
}
