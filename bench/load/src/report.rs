//! The Markdown report (ready for `docs/performance.md`) and `results.json`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use crate::results::{Created, GrowthPoint, Hop, Run, Step};

/// Milliseconds with the precision that matters at their size.
pub fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// A rate: whole numbers from 100 up.
pub fn per_second(value: f64) -> String {
    if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// KiB as MiB.
pub fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "unknown".to_string())
}

/// The report of a run.
pub fn markdown(run: &Run, results: &Path) -> String {
    let mut out = String::new();
    let commit = run.commit.as_deref().unwrap_or("unknown commit");
    let _ = writeln!(
        out,
        "### Load: `{}` ({}, {commit})\n",
        run.scenario, run.date
    );
    let _ = writeln!(out, "- command: `{}`", run.command);
    let _ = writeln!(
        out,
        "- store: {}; broker: {}; the load generator shares the machine with the system \
         ({} CPUs)",
        run.store, run.broker, run.cpus
    );
    let _ = writeln!(
        out,
        "- system RSS: {} idle after start, {} after the load",
        mib(run.figures.rss_idle_kib),
        mib(run.figures.rss_after_kib)
    );
    let _ = writeln!(
        out,
        "- figures: `{}`; system log: `{}`\n",
        results.display(),
        run.log
    );
    match run.scenario {
        "async" => async_table(&mut out, &run.figures.steps),
        "growth" => growth_table(&mut out, &run.figures.growth),
        "hops" => hops_table(&mut out, &run.figures.hops),
        _ => sync_table(&mut out, &run.figures.steps),
    }
    if let Some(created) = &run.figures.created_latency {
        created_line(&mut out, created);
    }
    errors(&mut out, run);
    out
}

fn sync_table(out: &mut String, steps: &[Step]) {
    out.push_str("| connections | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | errors | CPU ms/request | switches/request | quiet after | CPU ms/request until quiet | writer busy |\n");
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---|\n");
    for s in steps {
        let (quiet, cpu_to_quiet) = s.settled.as_ref().map_or_else(
            || ("–".to_string(), "–".to_string()),
            |settled| {
                (
                    format!("{:.2} s", settled.seconds),
                    cpu_cell(Some(&settled.cpu)),
                )
            },
        );
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.connections,
            s.requests,
            per_second(s.per_second),
            ms(s.latency.p50_ms),
            ms(s.latency.p90_ms),
            ms(s.latency.p99_ms),
            ms(s.latency.max_ms),
            s.non_2xx_total(),
            s.transport_errors,
            cpu_cell(s.cpu.as_ref()),
            switches_cell(s.cpu.as_ref()),
            quiet,
            cpu_to_quiet,
            writer_cell(s.writer.as_ref())
        );
    }
    out.push_str(
        "\nCPU ms/request: CPU time per 2xx answer (warm-up included) of the system + the \
         local PostgreSQL server's processes + the load generator (from /proc; – when not \
         read). With N cores, CPU-bound throughput is at most N × 1000 / their sum. \
         switches/request: context switches of the system's threads per 2xx answer. quiet \
         after: from the window's end until no message was on its way (the background work \
         the window's requests left behind); CPU ms/request until quiet: the same CPU time, \
         counted until then. writer busy (SQLite): the share of the time the database's one \
         writer was held, warm-up included, with the write transactions per second and the \
         mean time each held it (from the system's `/health`); near 100 %, the writer limits \
         throughput however idle the cores are.\n",
    );
}

fn writer_cell(writer: Option<&crate::writer::Busy>) -> String {
    writer.map_or_else(
        || "–".to_string(),
        |w| {
            format!(
                "{:.0} % ({:.0} tx/s, {:.2} ms each)",
                w.share * 100.0,
                w.turns_per_second,
                w.mean_turn_ms
            )
        },
    )
}

fn switches_cell(cpu: Option<&crate::cpu::PerRequest>) -> String {
    cpu.and_then(|cpu| cpu.system_switches)
        .map_or_else(|| "–".to_string(), |v| format!("{v:.0}"))
}

fn cpu_cell(cpu: Option<&crate::cpu::PerRequest>) -> String {
    let Some(cpu) = cpu else {
        return "–".to_string();
    };
    let part = |ms: Option<f64>| ms.map_or_else(|| "–".to_string(), |v| format!("{v:.2}"));
    format!(
        "{} + {} + {}",
        part(cpu.system_ms),
        part(cpu.postgres_ms),
        part(cpu.load_ms)
    )
}

/// The drain cell: seconds, or what was left.
pub fn drain(seconds: Option<f64>, backlog: u64) -> String {
    match seconds {
        Some(s) => format!("{s:.2} s"),
        None => format!("not drained ({backlog} left)"),
    }
}

fn async_table(out: &mut String, steps: &[Step]) {
    out.push_str(
        "| connections | accepted | accepted/s | executed/s | drain | p50 ms | p90 ms | p99 ms | max ms | non-2xx | errors | CPU ms/command | switches/command |\n",
    );
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n");
    for s in steps {
        let Some(q) = &s.queue else { continue };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.connections,
            q.accepted,
            per_second(q.accepted_per_second),
            per_second(q.executed_per_second),
            drain(q.drain_seconds, q.backlog),
            ms(s.latency.p50_ms),
            ms(s.latency.p90_ms),
            ms(s.latency.p99_ms),
            ms(s.latency.max_ms),
            s.non_2xx_total(),
            s.transport_errors,
            cpu_cell(s.cpu.as_ref()),
            switches_cell(s.cpu.as_ref())
        );
    }
    out.push_str(
        "\naccepted: 202 answers (warm-up included); accepted/s and executed/s: in the \
         measured window; drain: from the load's last answer until every accepted command \
         had created its reservation (counted every 250 ms); CPU ms/command: CPU time per \
         accepted command, from the step's start until no message was on its way (the \
         command, its reservation and its notification), of the system + the local \
         PostgreSQL server + the load generator.\n",
    );
}

fn created_line(out: &mut String, created: &Created) {
    let l = &created.latency;
    let _ = write!(
        out,
        "\n202 → created ({} request(s) one at a time, the query polled every 1 ms): \
         p50 {} ms, p99 {} ms, max {} ms",
        created.requests,
        ms(l.p50_ms),
        ms(l.p99_ms),
        ms(l.max_ms)
    );
    if created.refused > 0 || created.not_seen > 0 {
        let _ = write!(
            out,
            "; {} not accepted, {} not visible within 30 s",
            created.refused, created.not_seen
        );
    }
    out.push_str(".\n");
}

fn growth_table(out: &mut String, points: &[GrowthPoint]) {
    let connections = points.first().map_or(0, |p| p.step.connections);
    out.push_str(
        "| stored | req/s (median) | req/s of each run | CPU ms/request | p50 ms | p90 ms | p99 ms | max ms | non-2xx | errors | prefill | fresh req/s of each run | grown / fresh |\n",
    );
    out.push_str("|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|\n");
    for p in points {
        let s = &p.step;
        let prefill = if p.prefill_inserted > 0 {
            format!(
                "{} in {:.1} s, quiet {:.1} s later",
                p.prefill_inserted, p.prefill_seconds, p.idle_seconds
            )
        } else {
            "-".to_string()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            p.stored,
            per_second(s.per_second),
            p.per_second_runs
                .iter()
                .map(|r| per_second(*r))
                .collect::<Vec<_>>()
                .join(", "),
            cpu_cell(s.cpu.as_ref()),
            ms(s.latency.p50_ms),
            ms(s.latency.p90_ms),
            ms(s.latency.p99_ms),
            ms(s.latency.max_ms),
            s.non_2xx_total(),
            s.transport_errors,
            prefill,
            if p.fresh_per_second_runs.is_empty() {
                "–".to_string()
            } else {
                p.fresh_per_second_runs
                    .iter()
                    .map(|r| per_second(*r))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            p.ratio_to_fresh
                .map_or_else(|| "–".to_string(), |r| format!("{r:.2}"))
        );
    }
    let _ = writeln!(
        out,
        "\nstored: reservations in the store when the measurement began; each measurement is \
         `sync` at {connections} connection(s). With `--against-fresh`, a second system on a \
         fresh store is measured right after each run; grown / fresh is the median of the \
         pairs' ratios."
    );
}

fn hops_table(out: &mut String, hops: &[Hop]) {
    out.push_str("| path | hop | source | count | mean ms | p50 ms | p99 ms |\n");
    out.push_str("|---|---|---|---:|---:|---:|---:|\n");
    for h in hops {
        let l = &h.latency;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            h.path,
            h.hop,
            h.source,
            l.count,
            ms(l.mean_ms),
            ms(l.p50_ms),
            ms(l.p99_ms)
        );
    }
    out.push_str(
        "\nclient: the load generator's clock; span: the system's span, created to closed; \
         store: the difference of two stored timestamps (whole milliseconds: read the means).\n",
    );
}

fn errors(out: &mut String, run: &Run) {
    let steps = run
        .figures
        .steps
        .iter()
        .chain(run.figures.growth.iter().map(|p| &p.step));
    for s in steps {
        if !s.non_2xx.is_empty() {
            let _ = writeln!(
                out,
                "\nAt {} connection(s), answers other than 2xx: {:?}",
                s.connections, s.non_2xx
            );
        }
        if let Some(error) = &s.first_error {
            let _ = writeln!(
                out,
                "\nAt {} connection(s), the first transport error: {error}",
                s.connections
            );
        }
    }
}

/// Writes `results.json`.
pub fn write_json(run: &Run, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(run)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Figures;
    use crate::stats::Latency;

    #[test]
    fn numbers_keep_the_digits_that_matter() {
        assert_eq!(ms(1.23456), "1.23");
        assert_eq!(ms(12.345), "12.3");
        assert_eq!(ms(1234.5), "1234");
        assert_eq!(per_second(7.25), "7.2");
        assert_eq!(per_second(1234.4), "1234");
        assert_eq!(mib(Some(2048)), "2.0 MiB");
        assert_eq!(mib(None), "unknown");
        assert_eq!(drain(Some(0.5), 0), "0.50 s");
        assert_eq!(drain(None, 12), "not drained (12 left)");
    }

    #[test]
    fn a_sync_report_has_its_header_and_one_row_per_step() {
        let latency = Latency {
            count: 100,
            mean_ms: 2.0,
            p50_ms: 1.5,
            p90_ms: 3.0,
            p99_ms: 9.0,
            p999_ms: 12.0,
            max_ms: 15.0,
        };
        let step = Step {
            connections: 8,
            seconds: 10.0,
            requests: 12_345,
            per_second: 1234.5,
            latency,
            non_2xx: Default::default(),
            transport_errors: 0,
            first_error: None,
            curve: Vec::new(),
            queue: None,
            cpu: Some(crate::cpu::PerRequest {
                answered: 12_345,
                system_ms: Some(0.731),
                system_switches: Some(41.6),
                postgres_ms: None,
                load_ms: Some(0.125),
            }),
            writer: Some(crate::writer::Busy {
                share: 0.94,
                turns_per_second: 505.0,
                mean_turn_ms: 1.87,
            }),
            settled: Some(crate::results::Settled {
                seconds: 1.25,
                cpu: crate::cpu::PerRequest {
                    answered: 12_345,
                    system_ms: Some(0.9),
                    system_switches: Some(50.0),
                    postgres_ms: None,
                    load_ms: Some(0.125),
                },
            }),
        };
        let run = Run::for_test(
            "sync",
            Figures {
                rss_idle_kib: Some(10 * 1024),
                rss_after_kib: Some(20 * 1024),
                steps: vec![step],
                ..Figures::default()
            },
        );
        let text = markdown(&run, Path::new("results.json"));
        assert!(
            text.contains("### Load: `sync` (2026-01-01 00:00 UTC, abc1234)"),
            "{text}"
        );
        assert!(text.contains("- command: `load sync`"), "{text}");
        assert!(
            text.contains("10.0 MiB idle after start, 20.0 MiB after the load"),
            "{text}"
        );
        assert!(
            text.contains(
                "| 8 | 12345 | 1234 | 1.50 | 3.00 | 9.00 | 15.0 | 0 | 0 | 0.73 + – + 0.12 | 42 | 1.25 s | 0.90 + – + 0.12 |"
            ),
            "{text}"
        );
    }
}
