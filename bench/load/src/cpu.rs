//! CPU time spent by the processes a load involves: the system under load, the local
//! PostgreSQL server (every process named `postgres` on this machine) and this load generator.
//!
//! On a machine with few cores the three share them, so the CPU time each spends per answered
//! request says how far throughput can go before the cores run out, and where the time goes.
//! Read from `/proc/<pid>/stat` (Linux only; elsewhere nothing is reported).
//!
//! Beside it, the context switches of the system's threads: every hand-off between an async
//! task and a database connection's worker thread (sqlx runs each SQLite connection on a
//! thread of its own) costs two, so switches per request count that overhead in a figure the
//! machine's load does not blur as it blurs CPU time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Clock ticks per second of the `utime`/`stime` fields of `/proc/<pid>/stat` (`USER_HZ`,
/// which Linux keeps at 100 on every architecture for this interface).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds used so far, per process.
pub struct Sample {
    system: Option<f64>,
    system_switches: Option<u64>,
    load: Option<f64>,
    postgres: BTreeMap<u32, f64>,
}

/// Reads the CPU time of the system (`system_pid`), of this process and, `with_postgres`, of
/// every `postgres` process.
pub fn sample(system_pid: u32, with_postgres: bool) -> Sample {
    let mut postgres = BTreeMap::new();
    let entries = with_postgres
        .then(|| std::fs::read_dir("/proc").ok())
        .flatten();
    if let Some(entries) = entries {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(("postgres", seconds)) = read(pid).as_ref().map(|(c, s)| (c.as_str(), *s)) {
                postgres.insert(pid, seconds);
            }
        }
    }
    Sample {
        system: read(system_pid).map(|(_, s)| s),
        system_switches: switches(system_pid),
        load: read(std::process::id()).map(|(_, s)| s),
        postgres,
    }
}

/// The voluntary and involuntary context switches of all of `pid`'s threads so far (a thread
/// that ended is no longer counted: the system's runtime and connection threads live as long
/// as the process).
fn switches(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    for task in tasks.flatten() {
        if let Ok(status) = std::fs::read_to_string(task.path().join("status")) {
            total += parse_switches(&status).unwrap_or(0);
        }
    }
    Some(total)
}

/// The sum of `voluntary_ctxt_switches` and `nonvoluntary_ctxt_switches` of a
/// `/proc/<pid>/task/<tid>/status` text.
fn parse_switches(status: &str) -> Option<u64> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<u64>().ok())
    };
    Some(field("voluntary_ctxt_switches:")? + field("nonvoluntary_ctxt_switches:")?)
}

/// A process's name and its user plus system CPU seconds.
fn read(pid: u32) -> Option<(String, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// Parses a `/proc/<pid>/stat` line: the name is between the first `(` and the last `)`
/// (it may contain spaces and parentheses); `utime` and `stime` are the 12th and 13th fields
/// after it.
fn parse_stat(stat: &str) -> Option<(String, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 1..)?.split_whitespace().skip(11);
    let utime: f64 = rest.next()?.parse().ok()?;
    let stime: f64 = rest.next()?.parse().ok()?;
    Some((name, (utime + stime) / TICKS_PER_SECOND))
}

/// CPU milliseconds per answered request between two samples.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PerRequest {
    /// Requests answered with 2xx between the samples (warm-up included).
    pub answered: u64,
    /// The system's process.
    pub system_ms: Option<f64>,
    /// Context switches of the system's threads per answered request.
    #[serde(default)]
    pub system_switches: Option<f64>,
    /// All `postgres` processes (`None` when there were none: the SQLite store).
    pub postgres_ms: Option<f64>,
    /// This load generator.
    pub load_ms: Option<f64>,
}

/// What each part spent per answered request from `before` to `after`. A `postgres` process
/// that started in between counts from zero; one that ended in between is left out.
pub fn per_request(before: &Sample, after: &Sample, answered: u64) -> PerRequest {
    let per = |spent: f64| spent * 1000.0 / answered.max(1) as f64;
    let delta = |a: Option<f64>, b: Option<f64>| Some(per(b? - a?));
    let postgres = (!after.postgres.is_empty()).then(|| {
        per(after
            .postgres
            .iter()
            .map(|(pid, s)| s - before.postgres.get(pid).copied().unwrap_or(0.0))
            .sum())
    });
    PerRequest {
        answered,
        system_ms: delta(before.system, after.system),
        system_switches: before
            .system_switches
            .zip(after.system_switches)
            .map(|(b, a)| a.saturating_sub(b) as f64 / answered.max(1) as f64),
        postgres_ms: postgres,
        load_ms: delta(before.load, after.load),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_the_name_and_user_plus_system_seconds() {
        // The name holds a space and a parenthesis; utime 250 and stime 50 ticks.
        let line = "42 (we (ird) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        let (name, seconds) = parse_stat(line).expect("parses");
        assert_eq!(name, "we (ird) name");
        assert!((seconds - 3.0).abs() < 1e-9, "{seconds}");
    }

    #[test]
    fn per_request_divides_what_each_part_spent() {
        let before = Sample {
            system: Some(1.0),
            system_switches: Some(100),
            load: Some(0.5),
            postgres: BTreeMap::from([(10, 2.0), (11, 1.0)]),
        };
        // 11 ended; 12 started and spent 0.5 s.
        let after = Sample {
            system: Some(3.0),
            system_switches: Some(150_100),
            load: Some(0.7),
            postgres: BTreeMap::from([(10, 4.5), (12, 0.5)]),
        };
        let cpu = per_request(&before, &after, 1000);
        assert_eq!(cpu.system_ms.map(|v| (v * 1000.0).round()), Some(2000.0));
        assert_eq!(cpu.postgres_ms.map(|v| (v * 1000.0).round()), Some(3000.0));
        assert_eq!(cpu.load_ms.map(|v| (v * 1000.0).round()), Some(200.0));
        assert_eq!(cpu.system_switches, Some(150.0));
    }

    #[test]
    fn a_status_text_gives_both_kinds_of_switches() {
        let status = "Name:\tsqlx-sqlite-wor\nState:\tS (sleeping)\n\
            voluntary_ctxt_switches:\t1200\nnonvoluntary_ctxt_switches:\t34\n";
        assert_eq!(parse_switches(status), Some(1234));
        assert_eq!(parse_switches("Name:\tx\n"), None);
    }
}
