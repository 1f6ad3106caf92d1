//! `hops`: where the time of one request goes, one request at a time.
//!
//! Two sources, both from the system itself: its spans (`request`, `command`, `begin`,
//! `commit`, `query`, the consumers' `message(s)`), timed when they close and read back from
//! its log; and, for the asynchronous path, the timestamps the store keeps anyway (the outbox
//! row written and marked published, each consumer's inbox entry written with its unit of
//! work). The store's timestamps are whole milliseconds: their means over many requests are
//! what to read, not single values.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use reqwest::StatusCode;

use crate::cli::{self, HopsArgs};
use crate::drive::{Endpoint, Target};
use crate::results::Hop;
use crate::spans::{self, SpanTimes};
use crate::stats;
use crate::store::{InboxRow, OutboxRow};
use crate::system::System;

/// The example's topics.
const COMMANDS: &str = "comandos-reserva";
const EVENTS: &str = "ciclo-reserva";

/// Runs the warm-up, the synchronous requests and the asynchronous ones.
pub async fn run(args: &HopsArgs, system: &mut System) -> Result<Vec<Hop>> {
    let target = Target::new(&system.base_url, cli::seconds(args.request_timeout))?;
    let idle = cli::seconds(args.idle_timeout);
    eprintln!("hops: {} warm-up request(s) of each kind", args.warmup);
    for _ in 0..args.warmup {
        send(&target, Endpoint::Sync, &new_id()).await?;
        send(&target, Endpoint::Async, &new_id()).await?;
    }
    system.store.wait_idle(idle).await?;
    system.ensure_running()?;

    let log_start = log_length(&system.log)?;
    eprintln!(
        "hops: {} synchronous request(s), one at a time",
        args.requests
    );
    let mut hops = Vec::new();
    let mut client = stats::histogram();
    for _ in 0..args.requests {
        let started = Instant::now();
        send(&target, Endpoint::Sync, &new_id()).await?;
        stats::record(&mut client, started.elapsed());
    }
    system.store.wait_idle(idle).await?;
    hops.push(hop("sync", "POST /vuelos/reserva → 200", "client", &client));
    let log_middle = log_length(&system.log)?;

    eprintln!(
        "hops: {} asynchronous request(s), each until {} handled its event",
        args.requests, args.notified_by
    );
    let mut sent = Vec::new();
    let mut client = stats::histogram();
    for _ in 0..args.requests {
        let id = new_id();
        let sent_at = epoch_millis();
        let started = Instant::now();
        send(&target, Endpoint::Async, &id).await?;
        stats::record(&mut client, started.elapsed());
        wait_notified(system, &args.notified_by, &id, idle).await?;
        sent.push((id, sent_at));
    }
    system.store.wait_idle(idle).await?;
    system.ensure_running()?;
    hops.push(hop(
        "async",
        "POST /vuelos/reserva-comando → 202",
        "client",
        &client,
    ));
    let mut outbox = system.store.outbox_rows().await?;
    let relayed: std::collections::HashSet<String> =
        outbox.iter().map(|row| row.message_id.clone()).collect();
    outbox.extend(
        system
            .store
            .log_rows()
            .await?
            .into_iter()
            .filter(|row| !relayed.contains(&row.message_id)),
    );
    let inbox = system.store.inbox_rows().await?;
    hops.extend(stored_hops(&sent, &outbox, &inbox, &args.notified_by));

    let log =
        std::fs::read(&system.log).with_context(|| format!("reading {}", system.log.display()))?;
    for (path, range) in [
        ("sync", log_start..log_middle),
        ("async", log_middle..log.len()),
    ] {
        let mut times = SpanTimes::new();
        let text = String::from_utf8_lossy(log.get(range).unwrap_or_default());
        spans::collect(&text, &mut times);
        for (name, durations) in times {
            let mut histogram = stats::histogram();
            for took in durations {
                stats::record(&mut histogram, took);
            }
            hops.push(hop(path, &name, "span", &histogram));
        }
    }
    if !hops.iter().any(|h| h.source == "span") {
        bail!(
            "no span timings in {}: the binary must log them (ALPESPARTNERS_SPAN_TIMES=1, \
             a build from this commit on)",
            system.log.display()
        );
    }
    Ok(hops)
}

/// The environment the system runs with for `hops`: span timings on, at debug for the
/// spans wanted and warnings for the rest.
pub fn system_environment() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ALPESPARTNERS_SPAN_TIMES", "1"),
        (
            "RUST_LOG",
            "warn,tower_http::trace=debug,seedwork::application=debug,seedwork::uow=debug,\
             seedwork::messaging::relay=debug",
        ),
    ]
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn send(target: &Target, endpoint: Endpoint, id: &str) -> Result<()> {
    let status = target
        .create(endpoint, id)
        .await
        .map_err(|error| anyhow::anyhow!(crate::drive::error_chain(&error)))?;
    let expected = match endpoint {
        Endpoint::Sync => StatusCode::OK,
        Endpoint::Async => StatusCode::ACCEPTED,
    };
    if status != expected {
        bail!("{endpoint:?} request answered {status}, not {expected}");
    }
    Ok(())
}

/// Polls the store every millisecond until `consumer` has handled the event of reservation
/// `id`.
async fn wait_notified(system: &System, consumer: &str, id: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !system.store.event_handled(consumer, EVENTS, id).await? {
        if Instant::now() >= deadline {
            bail!(
                "{consumer} did not handle the event of {id} within {} s",
                timeout.as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

fn epoch_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn log_length(path: &Path) -> Result<usize> {
    let length = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    Ok(usize::try_from(length).unwrap_or(usize::MAX))
}

fn hop(path: &str, name: &str, source: &str, histogram: &hdrhistogram::Histogram<u64>) -> Hop {
    Hop {
        path: path.to_string(),
        hop: name.to_string(),
        source: source.to_string(),
        latency: stats::summarize(histogram),
    }
}

/// The asynchronous path's hops from the stored timestamps of each sent reservation.
pub fn stored_hops(
    sent: &[(String, i64)],
    outbox: &[OutboxRow],
    inbox: &[InboxRow],
    notified_by: &str,
) -> Vec<Hop> {
    // The first row of each topic and key: the creation's command and event. With the saga,
    // later commands and events of the same reservation (payment, approval…) share its key.
    let mut by_key: HashMap<(&str, &str), &OutboxRow> = HashMap::new();
    for row in outbox {
        let Some(key) = row.message_key.as_deref() else {
            continue;
        };
        by_key
            .entry((row.topic.as_str(), key))
            .and_modify(|first| {
                if row.created_at < first.created_at {
                    *first = row;
                }
            })
            .or_insert(row);
    }
    let mut handled: HashMap<&str, Vec<&InboxRow>> = HashMap::new();
    for row in inbox {
        handled
            .entry(row.message_id.as_str())
            .or_default()
            .push(row);
    }
    let first_handled = |message_id: &str, consumer: Option<&str>| {
        handled
            .get(message_id)?
            .iter()
            .filter(|row| consumer.is_none_or(|c| row.consumer == c))
            .map(|row| row.processed_at)
            .min()
    };
    const NAMES: [&str; 5] = [
        "command written → published (relay; 0 when written to the transport directly)",
        "command published → handled, reservation committed (command consumer)",
        "event written → published (relay; 0 when written to the transport directly)",
        "event published → handled (notifier)",
        "POST sent → event handled by the notifier (end to end)",
    ];
    let mut histograms: BTreeMap<usize, hdrhistogram::Histogram<u64>> = BTreeMap::new();
    let mut record = |index: usize, from: i64, to: Option<i64>| {
        if let Some(to) = to {
            let millis = u64::try_from(to - from).unwrap_or(0);
            stats::record(
                histograms.entry(index).or_insert_with(stats::histogram),
                Duration::from_millis(millis),
            );
        }
    };
    for (id, sent_at) in sent {
        let (Some(command), Some(event)) = (
            by_key.get(&(COMMANDS, id.as_str())),
            by_key.get(&(EVENTS, id.as_str())),
        ) else {
            continue;
        };
        record(0, command.created_at, command.published_at);
        if let Some(published) = command.published_at {
            record(1, published, first_handled(&command.message_id, None));
        }
        record(2, event.created_at, event.published_at);
        let notified = first_handled(&event.message_id, Some(notified_by));
        if let Some(published) = event.published_at {
            record(3, published, notified);
        }
        record(4, *sent_at, notified);
    }
    histograms
        .into_iter()
        .map(|(index, histogram)| hop("async", NAMES[index], "store", &histogram))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(topic: &str, key: &str, id: &str, created: i64, published: i64) -> OutboxRow {
        OutboxRow {
            topic: topic.to_string(),
            message_key: Some(key.to_string()),
            message_id: id.to_string(),
            created_at: created,
            published_at: Some(published),
        }
    }

    fn inbox(consumer: &str, id: &str, at: i64) -> InboxRow {
        InboxRow {
            consumer: consumer.to_string(),
            message_id: id.to_string(),
            processed_at: at,
        }
    }

    #[test]
    fn each_hop_is_the_difference_of_its_timestamps() {
        let sent = [("r1".to_string(), 1_000)];
        let rows = [
            outbox(COMMANDS, "r1", "c1", 1_002, 1_005),
            outbox(EVENTS, "r1", "e1", 1_009, 1_010),
        ];
        let handled = [
            inbox("commands", "c1", 1_009),
            inbox("ui", "e1", 1_011),
            inbox("notifier", "e1", 1_016),
        ];
        let hops = stored_hops(&sent, &rows, &handled, "notifier");
        let means: Vec<(String, f64)> = hops
            .iter()
            .map(|h| (h.hop.clone(), h.latency.mean_ms.round()))
            .collect();
        assert_eq!(
            means.iter().map(|(_, ms)| *ms).collect::<Vec<_>>(),
            vec![3.0, 4.0, 1.0, 6.0, 16.0]
        );
        assert!(means[3].0.contains("notifier"));
    }

    /// Later messages of the same reservation (the saga's approval) do not stand in for the
    /// creation's, in whatever order the rows come.
    #[test]
    fn the_first_command_and_event_of_a_reservation_are_its_creation() {
        let sent = [("r1".to_string(), 1_000)];
        let rows = [
            outbox(EVENTS, "r1", "e2", 1_050, 1_050),
            outbox(COMMANDS, "r1", "c1", 1_002, 1_002),
            outbox(EVENTS, "r1", "e1", 1_009, 1_009),
            outbox(COMMANDS, "r1", "c2", 1_040, 1_040),
        ];
        let handled = [
            inbox("commands", "c1", 1_008),
            inbox("commands", "c2", 1_045),
            inbox("notifier", "e1", 1_012),
            inbox("notifier", "e2", 1_060),
        ];
        let hops = stored_hops(&sent, &rows, &handled, "notifier");
        let means: Vec<f64> = hops.iter().map(|h| h.latency.mean_ms.round()).collect();
        assert_eq!(means, vec![0.0, 6.0, 0.0, 3.0, 12.0]);
    }

    #[test]
    fn a_reservation_without_its_rows_counts_nowhere() {
        let sent = [("r1".to_string(), 1_000), ("r2".to_string(), 2_000)];
        let rows = [
            outbox(COMMANDS, "r1", "c1", 1_002, 1_005),
            outbox(EVENTS, "r1", "e1", 1_009, 1_010),
            outbox(COMMANDS, "r2", "c2", 2_002, 2_005),
        ];
        let hops = stored_hops(&sent, &rows, &[], "notifier");
        assert!(hops.iter().all(|h| h.latency.count == 1));
        assert_eq!(
            hops.len(),
            2,
            "written → published, for the command and the event"
        );
    }
}
