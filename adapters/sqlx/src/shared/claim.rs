//! Which outbox rows a claimant may take: the rule every backend shares.
//!
//! A row is claimable when it is unpublished, not leased by another claimant (or its lease
//! expired), and — when it has a key — every earlier unpublished row with that key is claimable
//! too and taken in the same claim. The last part keeps order per key across relays: a later
//! row never leaves while an earlier one of its key is held elsewhere.

use std::collections::{HashMap, HashSet};

/// An unpublished row as the scan saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScannedRow {
    pub(crate) sequence: i64,
    pub(crate) key: Option<String>,
    pub(crate) lease_owner: Option<String>,
    pub(crate) lease_until: Option<i64>,
}

impl ScannedRow {
    fn available_to(&self, claimant: &str, now: i64) -> bool {
        match (&self.lease_owner, self.lease_until) {
            (Some(owner), Some(until)) => owner == claimant || until <= now,
            _ => true,
        }
    }
}

/// The keys whose history must be checked before claiming.
pub(crate) fn keys_of(scanned: &[ScannedRow]) -> Vec<String> {
    let mut seen = HashSet::new();
    scanned
        .iter()
        .filter_map(|row| row.key.clone())
        .filter(|key| seen.insert(key.clone()))
        .collect()
}

/// Chooses the sequences to claim, in order, at most `limit`.
///
/// `scanned` are the unpublished rows this claimant could see (in Postgres, those it could lock),
/// in sequence order; `history` has, for each key of `scanned`, every unpublished sequence of
/// that key up to the last scanned one, whether or not it was visible to the scan.
pub(crate) fn choose(
    claimant: &str,
    now: i64,
    limit: usize,
    scanned: &[ScannedRow],
    history: &HashMap<String, Vec<i64>>,
) -> Vec<i64> {
    let eligible: HashSet<i64> = scanned
        .iter()
        .filter(|row| row.available_to(claimant, now))
        .map(|row| row.sequence)
        .collect();
    let mut claimed = Vec::new();
    let mut claimed_set = HashSet::new();
    for row in scanned {
        if claimed.len() >= limit {
            break;
        }
        if !eligible.contains(&row.sequence) {
            continue;
        }
        if let Some(key) = &row.key {
            let earlier_all_claimed = history
                .get(key)
                .map(|sequences| {
                    sequences
                        .iter()
                        .filter(|s| **s < row.sequence)
                        .all(|s| claimed_set.contains(s))
                })
                .unwrap_or(true);
            if !earlier_all_claimed {
                continue;
            }
        }
        claimed.push(row.sequence);
        claimed_set.insert(row.sequence);
    }
    claimed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sequence: i64, key: &str, lease: Option<(&str, i64)>) -> ScannedRow {
        ScannedRow {
            sequence,
            key: (!key.is_empty()).then(|| key.to_string()),
            lease_owner: lease.map(|(o, _)| o.to_string()),
            lease_until: lease.map(|(_, u)| u),
        }
    }

    fn history(rows: &[ScannedRow]) -> HashMap<String, Vec<i64>> {
        let mut map: HashMap<String, Vec<i64>> = HashMap::new();
        for r in rows {
            if let Some(k) = &r.key {
                map.entry(k.clone()).or_default().push(r.sequence);
            }
        }
        map
    }

    #[test]
    fn takes_rows_in_order_up_to_the_limit() {
        let rows = [row(1, "a", None), row(2, "b", None), row(3, "a", None)];
        assert_eq!(choose("me", 0, 2, &rows, &history(&rows)), vec![1, 2]);
    }

    #[test]
    fn a_key_held_by_another_claimant_blocks_its_later_rows() {
        let rows = [
            row(1, "a", Some(("other", 100))),
            row(2, "a", None),
            row(3, "b", None),
        ];
        assert_eq!(choose("me", 50, 10, &rows, &history(&rows)), vec![3]);
        assert_eq!(
            choose("me", 100, 10, &rows, &history(&rows)),
            vec![1, 2, 3],
            "an expired lease frees the key"
        );
        assert_eq!(
            choose("other", 50, 10, &rows, &history(&rows)),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn an_earlier_row_invisible_to_the_scan_blocks_its_key() {
        let rows = [row(5, "a", None), row(6, "b", None)];
        let mut hist = history(&rows);
        hist.get_mut("a").unwrap().insert(0, 2);
        assert_eq!(choose("me", 0, 10, &rows, &hist), vec![6]);
    }

    #[test]
    fn rows_without_key_only_need_to_be_available() {
        let rows = [row(1, "", Some(("other", 100))), row(2, "", None)];
        assert_eq!(choose("me", 0, 10, &rows, &history(&rows)), vec![2]);
        assert!(keys_of(&rows).is_empty());
    }
}
