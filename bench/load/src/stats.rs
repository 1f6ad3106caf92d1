//! Latency histograms (microseconds) and what is read from them.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// A latency histogram in microseconds, from 1 µs to one hour, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Records one latency (clamped to the histogram's range).
pub fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    histogram.saturating_record(micros);
}

/// The percentiles of a histogram, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// How many latencies were recorded.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

/// Reads the percentiles (all zero for an empty histogram).
pub fn summarize(histogram: &Histogram<u64>) -> Latency {
    let ms = |micros: u64| micros as f64 / 1000.0;
    if histogram.is_empty() {
        return Latency {
            count: 0,
            mean_ms: 0.0,
            p50_ms: 0.0,
            p90_ms: 0.0,
            p99_ms: 0.0,
            p999_ms: 0.0,
            max_ms: 0.0,
        };
    }
    Latency {
        count: histogram.len(),
        mean_ms: histogram.mean() / 1000.0,
        p50_ms: ms(histogram.value_at_quantile(0.50)),
        p90_ms: ms(histogram.value_at_quantile(0.90)),
        p99_ms: ms(histogram.value_at_quantile(0.99)),
        p999_ms: ms(histogram.value_at_quantile(0.999)),
        max_ms: ms(histogram.max()),
    }
}

/// The "nines" of a percentile: 0 → 0, 90 → 1, 99 → 2, 99.9 → 3 (the x axis of the latency
/// plots, which spreads the tail out).
pub fn nines(percentile: f64) -> f64 {
    let rest = (1.0 - percentile / 100.0).clamp(1e-9, 1.0);
    -rest.log10()
}

/// The inverse of [`nines`].
pub fn percentile_of_nines(nines: f64) -> f64 {
    100.0 * (1.0 - 10f64.powf(-nines))
}

/// The latency curve of a histogram: `(percentile, ms)` at 20 points per nine, up to the
/// percentile that the sample size can still tell (one in `count`), at most 99.99.
pub fn curve(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    if histogram.is_empty() {
        return Vec::new();
    }
    let top = (histogram.len() as f64).log10().clamp(0.0, 4.0);
    let steps = (top * 20.0).ceil() as u32;
    (0..=steps)
        .map(|i| {
            let n = (f64::from(i) / 20.0).min(top);
            let percentile = percentile_of_nines(n);
            let ms = histogram.value_at_quantile(percentile / 100.0) as f64 / 1000.0;
            (percentile, ms)
        })
        .collect()
}

/// Events per second over a window (0 for an empty window).
pub fn rate(count: u64, window: Duration) -> f64 {
    let seconds = window.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// The median of `values` (the upper one of an even count); `None` when there are none.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_value_or_the_upper_of_two() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(3.0));
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = histogram();
        for ms in 1..=100 {
            record(&mut h, Duration::from_millis(ms));
        }
        let l = summarize(&h);
        assert_eq!(l.count, 100);
        assert!((l.p50_ms - 50.0).abs() < 0.1, "{l:?}");
        assert!((l.p90_ms - 90.0).abs() < 0.1, "{l:?}");
        assert!((l.p99_ms - 99.0).abs() < 0.1, "{l:?}");
        assert!((l.max_ms - 100.0).abs() < 0.1, "{l:?}");
    }

    #[test]
    fn an_empty_histogram_reads_zero() {
        let l = summarize(&histogram());
        assert_eq!(l.count, 0);
        assert_eq!(l.p99_ms, 0.0);
        assert!(curve(&histogram()).is_empty());
    }

    #[test]
    fn nines_spread_the_tail() {
        assert!((nines(0.0) - 0.0).abs() < 1e-9);
        assert!((nines(90.0) - 1.0).abs() < 1e-9);
        assert!((nines(99.9) - 3.0).abs() < 1e-9);
        assert!((percentile_of_nines(2.0) - 99.0).abs() < 1e-9);
    }

    #[test]
    fn the_curve_stops_where_the_sample_does() {
        let mut h = histogram();
        for ms in 1..=1000 {
            record(&mut h, Duration::from_millis(ms));
        }
        let c = curve(&h);
        assert_eq!(c.first().map(|p| p.0), Some(0.0));
        let last = c.last().unwrap().0;
        assert!((last - 99.9).abs() < 1e-6, "{last}");
        assert!(c.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn rates() {
        assert_eq!(rate(10, Duration::from_secs(2)), 5.0);
        assert_eq!(rate(10, Duration::ZERO), 0.0);
    }
}
