//! The exponential backoff the retry, outage and restart policies share: one formula, so the
//! three cannot drift apart.

use std::time::Duration;

/// The wait before try `attempt` (≥ 1; 0 counts as 1): `initial × multiplier^(attempt − 1)`,
/// at most `max`. A multiplier of 0 counts as 1 (a constant wait); every step saturates
/// instead of overflowing, so a long outage stays at `max`.
pub(crate) fn exponential(
    initial: Duration,
    multiplier: u32,
    attempt: u32,
    max: Duration,
) -> Duration {
    let exponent = attempt.saturating_sub(1);
    let factor = multiplier.max(1).saturating_pow(exponent);
    initial.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_first_attempts_wait_initial_then_grow_by_the_multiplier() {
        let max = Duration::from_secs(10);
        assert_eq!(exponential(100 * MS, 2, 0, max), 100 * MS);
        assert_eq!(exponential(100 * MS, 2, 1, max), 100 * MS);
        assert_eq!(exponential(100 * MS, 2, 2, max), 200 * MS);
        assert_eq!(exponential(100 * MS, 3, 3, max), 900 * MS);
    }

    #[test]
    fn the_wait_stops_at_max_and_never_overflows() {
        let max = Duration::from_secs(5);
        assert_eq!(exponential(50 * MS, 2, 8, max), max);
        assert_eq!(exponential(50 * MS, 2, u32::MAX, max), max);
        assert_eq!(exponential(Duration::MAX, u32::MAX, u32::MAX, max), max);
    }

    #[test]
    fn a_multiplier_of_zero_or_one_keeps_the_wait_constant() {
        let max = Duration::from_secs(5);
        assert_eq!(exponential(70 * MS, 0, 9, max), 70 * MS);
        assert_eq!(exponential(70 * MS, 1, 9, max), 70 * MS);
    }

    #[test]
    fn the_wait_never_shrinks_from_one_attempt_to_the_next() {
        let max = Duration::from_secs(30);
        for multiplier in 0..5 {
            let mut last = Duration::ZERO;
            for attempt in 0..80 {
                let wait = exponential(10 * MS, multiplier, attempt, max);
                assert!(wait >= last, "multiplier {multiplier}, attempt {attempt}");
                assert!(wait <= max);
                last = wait;
            }
        }
    }
}
