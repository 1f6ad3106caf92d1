//! `--rounds N [--baseline BINARY]`: the same scenario several times, alternating two binaries,
//! and a table of medians and of the ratio of each round's pair.
//!
//! On a shared machine one binary's throughput moves by 2–3× between runs a minute apart
//! (docs/performance.md), so one run of each binary says little. Runs of the two binaries
//! alternate (the baseline first in the first, third, … round, the candidate first in the
//! others, so that a drift of the machine's speed falls on both), and each round's
//! candidate/baseline ratio is taken before the median: a slow spell moves both runs of a
//! round and barely moves their ratio.

use std::fmt::Write as _;

use crate::report;
use crate::results::{Run, Step};
use crate::stats::{median, Latency};

/// Which binary runs first in round `round`: `true` for the baseline.
pub fn baseline_first(round: usize) -> bool {
    round.is_multiple_of(2)
}

/// The figure compared for a step: 2xx answers per second (`sync`), executed commands per
/// second (`async`).
fn rate(step: &Step) -> f64 {
    step.queue
        .as_ref()
        .map_or(step.per_second, |queue| queue.executed_per_second)
}

/// The system's (and PostgreSQL's) CPU milliseconds per request of a step, if measured.
fn cpu_ms(step: &Step) -> Option<f64> {
    let cpu = step.cpu.as_ref()?;
    Some(cpu.system_ms? + cpu.postgres_ms.unwrap_or(0.0))
}

/// For a `sync` step, the seconds from its window's end until nothing was on its way, and
/// the system's (and PostgreSQL's) CPU milliseconds per request until then.
fn settled(step: &Step) -> Option<(f64, f64)> {
    let settled = step.settled.as_ref()?;
    let cpu = &settled.cpu;
    Some((
        settled.seconds,
        cpu.system_ms? + cpu.postgres_ms.unwrap_or(0.0),
    ))
}

/// The context switches per request of a step, if measured.
fn switches(step: &Step) -> Option<f64> {
    step.cpu.as_ref()?.system_switches
}

/// The step of `run` at `connections`.
fn step_at(run: &Run, connections: usize) -> Option<&Step> {
    run.figures
        .steps
        .iter()
        .find(|step| step.connections == connections)
}

/// One column of figures (a binary's runs at one connection count).
struct Column {
    rates: Vec<f64>,
    cpu: Vec<f64>,
    switches: Vec<f64>,
    quiet_after: Vec<f64>,
    cpu_to_quiet: Vec<f64>,
}

impl Column {
    fn of(runs: &[Run], connections: usize) -> Column {
        let steps: Vec<&Step> = runs
            .iter()
            .filter_map(|r| step_at(r, connections))
            .collect();
        Column {
            rates: steps.iter().map(|s| rate(s)).collect(),
            cpu: steps.iter().filter_map(|s| cpu_ms(s)).collect(),
            switches: steps.iter().filter_map(|s| switches(s)).collect(),
            quiet_after: steps
                .iter()
                .filter_map(|s| settled(s).map(|(seconds, _)| seconds))
                .collect(),
            cpu_to_quiet: steps
                .iter()
                .filter_map(|s| settled(s).map(|(_, cpu)| cpu))
                .collect(),
        }
    }

    /// The medians of the seconds until quiet and of the CPU until then, if measured.
    fn settled_cells(&self) -> Option<[String; 2]> {
        Some([
            format!("{:.2}", median(&self.quiet_after)?),
            format!("{:.2}", median(&self.cpu_to_quiet)?),
        ])
    }

    /// `median (run, run, …)` of the rates, the median CPU and switches.
    fn cells(&self) -> [String; 3] {
        let runs = self
            .rates
            .iter()
            .map(|r| report::per_second(*r))
            .collect::<Vec<_>>()
            .join(", ");
        let or_dash = |value: Option<f64>, digits: usize| {
            value.map_or_else(|| "–".to_string(), |v| format!("{v:.digits$}"))
        };
        [
            format!(
                "{} ({runs})",
                or_dash(median(&self.rates).map(|m| m.round()), 0)
            ),
            or_dash(median(&self.cpu), 2),
            or_dash(median(&self.switches), 0),
        ]
    }
}

/// The median of the rounds' candidate/baseline ratios of `figure` (rounds in which either
/// binary has no such figure, or the baseline's is zero, are left out).
fn median_of_rounds(
    baseline: &[Run],
    candidate: &[Run],
    figure: impl Fn(&Run) -> Option<f64>,
) -> Option<f64> {
    let ratios: Vec<f64> = baseline
        .iter()
        .zip(candidate)
        .filter_map(|(b, c)| {
            let (b, c) = (figure(b)?, figure(c)?);
            (b > 0.0).then(|| c / b)
        })
        .collect();
    median(&ratios)
}

/// The median of the rounds' candidate/baseline rate ratios at `connections`.
pub fn median_ratio(baseline: &[Run], candidate: &[Run], connections: usize) -> Option<f64> {
    median_of_rounds(baseline, candidate, |run| {
        Some(rate(step_at(run, connections)?))
    })
}

/// The latency of `run`'s hop `path`/`hop`, if it has one.
fn hop_latency<'a>(run: &'a Run, path: &str, hop: &str) -> Option<&'a Latency> {
    run.figures
        .hops
        .iter()
        .find(|h| h.path == path && h.hop == hop)
        .map(|h| &h.latency)
}

/// `hops` compared: per hop the load generator or the store timed (the system's own spans
/// are left to each run's report), each binary's p50 in every round and their median, and
/// the median of the rounds' candidate/baseline ratios of the mean.
fn hops_table(out: &mut String, baseline: Option<&[Run]>, candidate: &[Run]) {
    let Some(first) = candidate.first() else {
        return;
    };
    let p50s = |runs: &[Run], path: &str, hop: &str| {
        let p50: Vec<f64> = runs
            .iter()
            .filter_map(|run| hop_latency(run, path, hop).map(|l| l.p50_ms))
            .collect();
        let each = p50.iter().map(|v| format!("{v:.1}")).collect::<Vec<_>>();
        median(&p50).map_or_else(
            || "–".to_string(),
            |m| format!("{m:.1} ({})", each.join(", ")),
        )
    };
    let _ = match baseline {
        Some(_) => writeln!(
            out,
            "| path | hop | baseline p50 ms | candidate p50 ms | candidate / baseline, mean \
             (median of rounds) |\n|---|---|---|---|---:|"
        ),
        None => writeln!(out, "| path | hop | p50 ms |\n|---|---|---|"),
    };
    for h in first.figures.hops.iter().filter(|h| h.source != "span") {
        let (path, hop) = (h.path.as_str(), h.hop.as_str());
        let candidate_cell = p50s(candidate, path, hop);
        let _ = match baseline {
            Some(baseline) => {
                let ratio = median_of_rounds(baseline, candidate, |run| {
                    Some(hop_latency(run, path, hop)?.mean_ms)
                })
                .map_or_else(|| "–".to_string(), |r| format!("{r:.2}"));
                writeln!(
                    out,
                    "| {path} | {hop} | {} | {candidate_cell} | {ratio} |",
                    p50s(baseline, path, hop)
                )
            }
            None => writeln!(out, "| {path} | {hop} | {candidate_cell} |"),
        };
    }
}

/// The comparison table: per connection count, each binary's median rate (and every run's),
/// median CPU ms and switches per request, and the median of the rounds' ratios. Without a
/// baseline, the candidate's columns only.
pub fn markdown(baseline: Option<(&str, &[Run])>, candidate: (&str, &[Run])) -> String {
    let (candidate_name, candidate_runs) = candidate;
    let mut connections: Vec<usize> = candidate_runs
        .iter()
        .flat_map(|run| run.figures.steps.iter().map(|s| s.connections))
        .collect();
    connections.sort_unstable();
    connections.dedup();
    let unit = if candidate_runs
        .iter()
        .any(|run| run.figures.steps.iter().any(|s| s.queue.is_some()))
    {
        "executed/s"
    } else {
        "req/s"
    };

    let settles = candidate_runs
        .iter()
        .any(|run| run.figures.steps.iter().any(|s| s.settled.is_some()));
    let mut out = String::new();
    if candidate_runs
        .iter()
        .all(|run| run.figures.steps.is_empty() && !run.figures.hops.is_empty())
    {
        let _ = writeln!(
            out,
            "\n{} round(s); each binary's median p50 (each round's in brackets){}.\n",
            candidate_runs.len(),
            if baseline.is_some() {
                ", and the median of the rounds' candidate / baseline ratios of the mean"
            } else {
                ""
            }
        );
        let _ = writeln!(out, "- candidate: `{candidate_name}`");
        if let Some((baseline_name, _)) = baseline {
            let _ = writeln!(out, "- baseline: `{baseline_name}`");
        }
        let _ = writeln!(out);
        hops_table(&mut out, baseline.map(|(_, runs)| runs), candidate_runs);
        return out;
    }
    let _ = writeln!(
        out,
        "\n{} round(s); the median of the runs (each run in brackets){}.\n",
        candidate_runs.len(),
        if baseline.is_some() {
            ", and of the rounds' candidate / baseline ratios"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "- candidate: `{candidate_name}`");
    match baseline {
        Some((baseline_name, baseline_runs)) => {
            let _ = writeln!(out, "- baseline: `{baseline_name}`\n");
            let _ = writeln!(
                out,
                "| connections | baseline {unit} | candidate {unit} | candidate / baseline \
                 (median of rounds) | CPU ms/request, baseline → candidate | switches/request, \
                 baseline → candidate |{}",
                if settles {
                    " quiet after the window, s, baseline → candidate | CPU ms/request until \
                     quiet, baseline → candidate |"
                } else {
                    ""
                }
            );
            let _ = writeln!(
                out,
                "|---:|---|---|---:|---|---|{}",
                if settles { "---|---|" } else { "" }
            );
            for c in connections {
                let (baseline, candidate) =
                    (Column::of(baseline_runs, c), Column::of(candidate_runs, c));
                let [b_rate, b_cpu, b_switches] = baseline.cells();
                let [c_rate, c_cpu, c_switches] = candidate.cells();
                let ratio = median_ratio(baseline_runs, candidate_runs, c)
                    .map_or_else(|| "–".to_string(), |r| format!("{r:.2}"));
                let settled = if settles {
                    let dash = || ["–".to_string(), "–".to_string()];
                    let [b_quiet, b_cpu] = baseline.settled_cells().unwrap_or_else(dash);
                    let [c_quiet, c_cpu] = candidate.settled_cells().unwrap_or_else(dash);
                    format!(" {b_quiet} → {c_quiet} | {b_cpu} → {c_cpu} |")
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "| {c} | {b_rate} | {c_rate} | {ratio} | {b_cpu} → {c_cpu} | \
                     {b_switches} → {c_switches} |{settled}"
                );
            }
        }
        None => {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "| connections | {unit} | CPU ms/request | switches/request |"
            );
            let _ = writeln!(out, "|---:|---|---|---|");
            for c in connections {
                let [rate, cpu, switches] = Column::of(candidate_runs, c).cells();
                let _ = writeln!(out, "| {c} | {rate} | {cpu} | {switches} |");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::PerRequest;
    use crate::results::Figures;

    fn run(rates: &[(usize, f64, f64)]) -> Run {
        let steps = rates
            .iter()
            .map(|(connections, per_second, cpu)| Step {
                cpu: Some(PerRequest {
                    answered: 1,
                    system_ms: Some(*cpu),
                    system_switches: Some(100.0),
                    postgres_ms: None,
                    load_ms: Some(0.1),
                }),
                ..Step::at_rate(*connections, *per_second)
            })
            .collect();
        Run::for_test(
            "sync",
            Figures {
                steps,
                ..Default::default()
            },
        )
    }

    #[test]
    fn rounds_alternate_which_binary_goes_first() {
        assert!(baseline_first(0));
        assert!(!baseline_first(1));
        assert!(baseline_first(2));
    }

    #[test]
    fn the_ratio_is_the_median_of_the_rounds_not_of_the_medians() {
        let baseline = [
            run(&[(8, 100.0, 3.0)]),
            run(&[(8, 400.0, 3.0)]),
            run(&[(8, 400.0, 3.0)]),
        ];
        let candidate = [
            run(&[(8, 200.0, 2.0)]),
            run(&[(8, 200.0, 2.0)]),
            run(&[(8, 220.0, 2.0)]),
        ];
        // The rounds' ratios are 2.0, 0.5 and 0.55: their median is 0.55, where the ratio of
        // the medians would be 200 / 400 = 0.5.
        let ratio = median_ratio(&baseline, &candidate, 8).expect("a ratio");
        assert!((ratio - 0.55).abs() < 1e-9, "{ratio}");
        assert_eq!(
            median_ratio(&baseline, &candidate, 64),
            None,
            "no such step"
        );
    }

    #[test]
    fn the_table_has_a_row_per_connection_count_with_both_binaries() {
        let baseline = [run(&[(8, 100.0, 3.0), (64, 300.0, 2.5)])];
        let candidate = [run(&[(8, 150.0, 2.0), (64, 270.0, 2.75)])];
        let table = markdown(Some(("before", &baseline)), ("after", &candidate));
        assert!(table.contains("| 8 | 100 (100) | 150 (150) | 1.50 | 3.00 → 2.00 | 100 → 100 |"));
        assert!(table.contains("| 64 | 300 (300) | 270 (270) | 0.90 | 2.50 → 2.75 | 100 → 100 |"));
        let alone = markdown(None, ("after", &candidate));
        assert!(alone.contains("| 8 | 150 (150) | 2.00 | 100 |"), "{alone}");
        assert!(!alone.contains("baseline"));
        assert!(
            !table.contains("quiet"),
            "no such column without the figures"
        );
    }

    fn hops_run(end_to_end: &[(f64, f64)]) -> Run {
        let hop = |hop: &str, source: &str, (p50_ms, mean_ms): (f64, f64)| crate::results::Hop {
            path: "async".into(),
            hop: hop.into(),
            source: source.into(),
            latency: Latency {
                count: 200,
                mean_ms,
                p50_ms,
                p90_ms: p50_ms,
                p99_ms: p50_ms,
                p999_ms: p50_ms,
                max_ms: p50_ms,
            },
        };
        Run::for_test(
            "hops",
            Figures {
                hops: end_to_end
                    .iter()
                    .flat_map(|&times| {
                        [
                            hop("end to end", "store", times),
                            hop("message x", "span", times),
                        ]
                    })
                    .collect(),
                ..Default::default()
            },
        )
    }

    #[test]
    fn hops_compare_each_timed_hop_by_the_median_of_the_rounds() {
        let baseline = [
            hops_run(&[(7.0, 8.0)]),
            hops_run(&[(6.0, 6.0)]),
            hops_run(&[(12.0, 12.0)]),
        ];
        let candidate = [
            hops_run(&[(5.0, 6.0)]),
            hops_run(&[(6.0, 6.0)]),
            hops_run(&[(8.0, 9.0)]),
        ];
        let table = markdown(Some(("before", &baseline)), ("after", &candidate));
        // Ratios of the means: 0.75, 1.0 and 0.75; their median is 0.75.
        assert!(
            table.contains(
                "| async | end to end | 7.0 (7.0, 6.0, 12.0) | 6.0 (5.0, 6.0, 8.0) | 0.75 |"
            ),
            "{table}"
        );
        assert!(!table.contains("message x"), "spans are left out: {table}");
    }

    #[test]
    fn what_a_sync_window_left_behind_is_compared_when_measured() {
        let settled = |run: Run, seconds: f64, cpu: f64| {
            let mut run = run;
            for step in &mut run.figures.steps {
                step.settled = Some(crate::results::Settled {
                    seconds,
                    cpu: PerRequest {
                        answered: 1,
                        system_ms: Some(cpu),
                        system_switches: None,
                        postgres_ms: Some(1.0),
                        load_ms: None,
                    },
                });
            }
            run
        };
        let baseline = [settled(run(&[(64, 300.0, 2.5)]), 4.0, 3.5)];
        let candidate = [settled(run(&[(64, 270.0, 2.75)]), 0.5, 2.0)];
        let table = markdown(Some(("before", &baseline)), ("after", &candidate));
        assert!(
            table.contains("| 64 | 300 (300) | 270 (270) | 0.90 | 2.50 → 2.75 | 100 → 100 | 4.00 → 0.50 | 4.50 → 3.00 |"),
            "{table}"
        );
    }
}
