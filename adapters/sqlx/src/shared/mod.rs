//! Backend-independent pieces: the claim algorithm, message rows, savepoint names, time.

pub(crate) mod claim;
pub(crate) mod commit_tail;
pub(crate) mod rows;
pub(crate) mod writer_gate;

use crate::error::SqlxError;

/// Savepoint names go into SQL text (they cannot be bound), so only plain identifiers pass.
pub(crate) fn checked_savepoint_name(name: &str) -> Result<&str, SqlxError> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(name)
    } else {
        Err(SqlxError::SavepointName {
            name: name.to_string(),
        })
    }
}

/// Milliseconds since the epoch, the time unit of every timestamp column.
pub(crate) fn now_millis() -> i64 {
    seedwork::messaging::now_millis()
}

/// A duration in milliseconds, saturating.
pub(crate) fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A count or version as a `BIGINT` parameter, saturating.
pub(crate) fn int_param(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A JSON array of the given values: how SQLite binds a list (read with `json_each`).
#[cfg(feature = "sqlite")]
pub(crate) fn json_list<T: serde::Serialize>(values: &[T]) -> Result<String, serde_json::Error> {
    serde_json::to_string(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn savepoint_names_are_plain_identifiers() {
        assert!(checked_savepoint_name("seedwork_sp_1").is_ok());
        assert!(checked_savepoint_name("_x").is_ok());
        for bad in [
            "",
            "1abc",
            "a; DROP TABLE x",
            "a-b",
            "sp name",
            &"x".repeat(64),
        ] {
            assert!(
                matches!(
                    checked_savepoint_name(bad),
                    Err(SqlxError::SavepointName { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
