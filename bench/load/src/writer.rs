//! How busy SQLite's one writer is during a step. The system's `GET /health` reports the totals
//! of its database's writer (part `writer`: write transactions so far, and how long they held
//! it); two samples give the share of the time between them the writer was held, and the mean
//! time one write transaction held it. Near 100 %, the writer is what limits throughput, however
//! idle the cores are. PostgreSQL and the memory store report no such part: nothing is shown.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The writer's totals at one moment.
pub struct Sample {
    at: Instant,
    turns: u64,
    held_ms: u64,
}

/// What the writer did between two samples.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Busy {
    /// Share of the time it was held (0 to 1).
    pub share: f64,
    /// Write transactions per second.
    pub turns_per_second: f64,
    /// Mean time one held it, ms.
    pub mean_turn_ms: f64,
}

/// Reads the writer's totals from `/health` (whatever its status); `None` when the system
/// reports no writer or does not answer.
pub async fn sample(base_url: &str) -> Option<Sample> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let body: serde_json::Value = client
        .get(format!("{base_url}/health"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let at = Instant::now();
    let writer = &body["parts"]["writer"];
    Some(Sample {
        at,
        turns: writer["turns"].as_u64()?,
        held_ms: writer["held_ms"].as_u64()?,
    })
}

/// The writer between `before` and `after`.
pub fn between(before: &Sample, after: &Sample) -> Option<Busy> {
    let seconds = after.at.checked_duration_since(before.at)?.as_secs_f64();
    let turns = after.turns.checked_sub(before.turns)?;
    let held_ms = after.held_ms.checked_sub(before.held_ms)? as f64;
    if seconds <= 0.0 {
        return None;
    }
    Some(Busy {
        share: (held_ms / 1000.0 / seconds).min(1.0),
        turns_per_second: turns as f64 / seconds,
        mean_turn_ms: if turns == 0 {
            0.0
        } else {
            held_ms / turns as f64
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_is_held_time_over_wall_time() {
        let start = Instant::now();
        let before = Sample {
            at: start,
            turns: 10,
            held_ms: 1_000,
        };
        let after = Sample {
            at: start + Duration::from_secs(2),
            turns: 410,
            held_ms: 2_500,
        };
        let busy = between(&before, &after).expect("figures");
        assert!((busy.share - 0.75).abs() < 1e-9, "{busy:?}");
        assert!((busy.turns_per_second - 200.0).abs() < 1e-9, "{busy:?}");
        assert!((busy.mean_turn_ms - 3.75).abs() < 1e-9, "{busy:?}");
        assert_eq!(between(&after, &before), None, "samples out of order");
    }
}
