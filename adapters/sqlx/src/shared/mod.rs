//! Backend-independent pieces: the claim algorithm, message rows, savepoint names, errors.

pub(crate) mod claim;
pub(crate) mod rows;

use seedwork::Error;

/// Wraps a driver error as a store error.
pub(crate) fn store_error(error: sqlx::Error) -> Error {
    Error::store(error)
}

/// Savepoint names go into SQL text (they cannot be bound), so only plain identifiers pass.
pub(crate) fn checked_savepoint_name(name: &str) -> Result<&str, Error> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(name)
    } else {
        Err(Error::UnitOfWork(format!(
            "`{name}` is not a valid savepoint name (letters, digits and `_` only)"
        )))
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

/// A JSON array of the given values, the one list form both backends bind.
pub(crate) fn json_list<T: serde::Serialize>(values: &[T]) -> Result<String, Error> {
    serde_json::to_string(values).map_err(|e| Error::codec("list parameter", e))
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
            assert!(checked_savepoint_name(bad).is_err(), "{bad:?}");
        }
    }
}
