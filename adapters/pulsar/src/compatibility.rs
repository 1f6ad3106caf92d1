//! Whether one Avro schema may follow another on a topic, checked before the broker is asked.
//!
//! Pulsar's schema registry checks every new schema a producer or consumer brings against the
//! versions it holds, under the strategy set on the topic's namespace (`FULL` when nothing is
//! set), and refuses the producer when the check fails. [`check`] and [`check_versions`] run
//! the same rules locally with apache-avro's schema-resolution checker, so a test can catch a
//! breaking change before any broker refuses it; the broker's refusal comes back from
//! [`PulsarBroker`](crate::PulsarBroker) as [`seedwork::Error::Broker`], not retried.
//!
//! ```
//! use seedwork_pulsar::compatibility::{check, Compatibility};
//!
//! let v1 = r#"{"type":"record","name":"Ping","fields":[{"name":"n","type":"long"}]}"#;
//! // A new field with a default: old readers skip it, new readers fill it in.
//! let v2 = r#"{"type":"record","name":"Ping","fields":[{"name":"n","type":"long"},
//!     {"name":"text","type":["null","string"],"default":null}]}"#;
//! // A new field without a default: a new reader cannot read what v1 wrote.
//! let breaking = r#"{"type":"record","name":"Ping","fields":[{"name":"n","type":"long"},
//!     {"name":"text","type":"string"}]}"#;
//! assert!(check(v1, v2, Compatibility::Full).is_ok());
//! assert!(check(v1, breaking, Compatibility::Full).is_err());
//! assert!(check(v1, breaking, Compatibility::Forward).is_ok());
//! ```

use std::fmt;
use std::str::FromStr;

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;

/// A schema compatibility strategy of Pulsar's registry (the namespace policy
/// `schemaCompatibilityStrategy`), for the strategies that compare schemas.
///
/// The plain ones compare a new schema with the latest version only; the transitive ones with
/// every version the registry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compatibility {
    /// Consumers on the new schema read what the old one wrote (`BACKWARD`).
    Backward,
    /// Consumers on the old schema read what the new one writes (`FORWARD`).
    Forward,
    /// Both (`FULL`, the broker's default).
    Full,
    /// [`Backward`](Self::Backward) against every earlier version (`BACKWARD_TRANSITIVE`).
    BackwardTransitive,
    /// [`Forward`](Self::Forward) against every earlier version (`FORWARD_TRANSITIVE`).
    ForwardTransitive,
    /// [`Full`](Self::Full) against every earlier version (`FULL_TRANSITIVE`).
    FullTransitive,
}

impl Compatibility {
    /// The name Pulsar's admin API uses (`"FULL"`, `"BACKWARD_TRANSITIVE"`, …).
    pub fn as_pulsar_str(&self) -> &'static str {
        match self {
            Compatibility::Backward => "BACKWARD",
            Compatibility::Forward => "FORWARD",
            Compatibility::Full => "FULL",
            Compatibility::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Compatibility::ForwardTransitive => "FORWARD_TRANSITIVE",
            Compatibility::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn transitive(&self) -> bool {
        matches!(
            self,
            Compatibility::BackwardTransitive
                | Compatibility::ForwardTransitive
                | Compatibility::FullTransitive
        )
    }

    fn new_reads_old(&self) -> bool {
        !matches!(
            self,
            Compatibility::Forward | Compatibility::ForwardTransitive
        )
    }

    fn old_reads_new(&self) -> bool {
        !matches!(
            self,
            Compatibility::Backward | Compatibility::BackwardTransitive
        )
    }
}

impl fmt::Display for Compatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_pulsar_str())
    }
}

impl FromStr for Compatibility {
    type Err = CompatibilityError;

    /// Reads Pulsar's name of a strategy (as its admin API returns it, quoted or not).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let name = name.trim().trim_matches('"');
        Ok(match name {
            "BACKWARD" => Compatibility::Backward,
            "FORWARD" => Compatibility::Forward,
            "FULL" => Compatibility::Full,
            "BACKWARD_TRANSITIVE" => Compatibility::BackwardTransitive,
            "FORWARD_TRANSITIVE" => Compatibility::ForwardTransitive,
            "FULL_TRANSITIVE" => Compatibility::FullTransitive,
            other => {
                return Err(CompatibilityError::UnknownStrategy {
                    name: other.to_string(),
                })
            }
        })
    }
}

/// Why a schema may not follow another.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompatibilityError {
    /// A schema is not valid Avro.
    #[error("schema version {version} is not valid Avro: {reason}")]
    Invalid {
        /// Its position in the versions checked (0 is the oldest).
        version: usize,
        /// What the parser said.
        reason: String,
    },
    /// Readers on one version cannot read what another wrote.
    #[error(
        "under {strategy}, readers on schema version {reader} cannot read what version \
         {writer} wrote: {reason}"
    )]
    Incompatible {
        /// The strategy checked.
        strategy: Compatibility,
        /// The version that would write (0 is the oldest).
        writer: usize,
        /// The version that would read.
        reader: usize,
        /// What the checker said.
        reason: String,
    },
    /// Not one of the strategies [`Compatibility`] names (`ALWAYS_COMPATIBLE`,
    /// `ALWAYS_INCOMPATIBLE` and `UNDEFINED` compare nothing).
    #[error("`{name}` is not a strategy that compares schemas")]
    UnknownStrategy {
        /// The name given.
        name: String,
    },
}

/// Checks that `next` may follow `previous` under `strategy`.
pub fn check(
    previous: &str,
    next: &str,
    strategy: Compatibility,
) -> Result<(), CompatibilityError> {
    check_versions(&[previous, next], strategy)
}

/// Checks a topic's schema history, oldest first, as the registry checked each version when
/// it was registered: against the one before it, or against all earlier ones for a
/// transitive strategy.
pub fn check_versions(
    versions: &[&str],
    strategy: Compatibility,
) -> Result<(), CompatibilityError> {
    let schemas = versions
        .iter()
        .enumerate()
        .map(|(version, text)| {
            Schema::parse_str(text).map_err(|error| CompatibilityError::Invalid {
                version,
                reason: error.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for new in 1..schemas.len() {
        let earlier = if strategy.transitive() { 0 } else { new - 1 };
        for old in earlier..new {
            if strategy.new_reads_old() {
                can_read(&schemas, old, new, strategy)?;
            }
            if strategy.old_reads_new() {
                can_read(&schemas, new, old, strategy)?;
            }
        }
    }
    Ok(())
}

fn can_read(
    schemas: &[Schema],
    writer: usize,
    reader: usize,
    strategy: Compatibility,
) -> Result<(), CompatibilityError> {
    SchemaCompatibility::can_read(&schemas[writer], &schemas[reader]).map_err(|error| {
        CompatibilityError::Incompatible {
            strategy,
            writer,
            reader,
            reason: error.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"type":"record","name":"Ping","fields":[{"name":"n","type":"long"}]}"#;
    /// V1 plus an optional field with a default.
    const WITH_DEFAULT: &str = r#"{"type":"record","name":"Ping","fields":[
        {"name":"n","type":"long"},
        {"name":"text","type":["null","string"],"default":null}]}"#;
    /// V1 plus a string field with a default.
    const WITH_STRING_DEFAULT: &str = r#"{"type":"record","name":"Ping","fields":[
        {"name":"n","type":"long"},{"name":"text","type":"string","default":"-"}]}"#;
    /// V1 plus a field without a default.
    const WITHOUT_DEFAULT: &str = r#"{"type":"record","name":"Ping","fields":[
        {"name":"n","type":"long"},{"name":"text","type":"string"}]}"#;
    /// V1 with its field's type changed.
    const RETYPED: &str =
        r#"{"type":"record","name":"Ping","fields":[{"name":"n","type":"string"}]}"#;

    #[test]
    fn a_field_with_a_default_may_come_and_go_under_every_strategy() {
        for strategy in [
            Compatibility::Backward,
            Compatibility::Forward,
            Compatibility::Full,
            Compatibility::FullTransitive,
        ] {
            assert!(check(V1, WITH_DEFAULT, strategy).is_ok(), "{strategy}");
            assert!(check(WITH_DEFAULT, V1, strategy).is_ok(), "{strategy}");
        }
    }

    #[test]
    fn a_field_added_without_a_default_breaks_backward_only() {
        // New readers need a value the old writers never wrote.
        let backward = check(V1, WITHOUT_DEFAULT, Compatibility::Backward);
        assert!(
            matches!(
                backward,
                Err(CompatibilityError::Incompatible {
                    writer: 0,
                    reader: 1,
                    ..
                })
            ),
            "{backward:?}"
        );
        // Old readers skip the field they do not know.
        assert!(check(V1, WITHOUT_DEFAULT, Compatibility::Forward).is_ok());
        assert!(check(V1, WITHOUT_DEFAULT, Compatibility::Full).is_err());
    }

    #[test]
    fn a_field_removed_without_a_default_breaks_forward_only() {
        // Old readers need the value new writers no longer write.
        let forward = check(WITHOUT_DEFAULT, V1, Compatibility::Forward);
        assert!(
            matches!(
                forward,
                Err(CompatibilityError::Incompatible {
                    writer: 1,
                    reader: 0,
                    ..
                })
            ),
            "{forward:?}"
        );
        assert!(check(WITHOUT_DEFAULT, V1, Compatibility::Backward).is_ok());
    }

    #[test]
    fn a_changed_type_breaks_every_strategy() {
        for strategy in [Compatibility::Backward, Compatibility::Forward] {
            assert!(check(V1, RETYPED, strategy).is_err(), "{strategy}");
        }
    }

    #[test]
    fn transitive_strategies_compare_with_every_earlier_version() {
        // v1 → v2 adds a field with a default, v2 → v3 drops the default: each step is
        // backward compatible with the one before, but v3 cannot read what v1 wrote.
        let history = [V1, WITH_STRING_DEFAULT, WITHOUT_DEFAULT];
        assert!(check(V1, WITH_STRING_DEFAULT, Compatibility::Backward).is_ok());
        assert!(check(
            WITH_STRING_DEFAULT,
            WITHOUT_DEFAULT,
            Compatibility::Backward
        )
        .is_ok());
        assert!(check_versions(&history, Compatibility::Backward).is_ok());
        let transitive = check_versions(&history, Compatibility::BackwardTransitive);
        assert!(
            matches!(
                transitive,
                Err(CompatibilityError::Incompatible {
                    writer: 0,
                    reader: 2,
                    ..
                })
            ),
            "{transitive:?}"
        );
    }

    #[test]
    fn an_invalid_schema_names_its_version() {
        let invalid = check_versions(&[V1, "{\"type\":\"nope\"}"], Compatibility::Full);
        assert!(
            matches!(invalid, Err(CompatibilityError::Invalid { version: 1, .. })),
            "{invalid:?}"
        );
    }

    #[test]
    fn strategies_read_and_write_pulsar_names() {
        for strategy in [
            Compatibility::Backward,
            Compatibility::Forward,
            Compatibility::Full,
            Compatibility::BackwardTransitive,
            Compatibility::ForwardTransitive,
            Compatibility::FullTransitive,
        ] {
            let quoted = format!("\"{}\"", strategy.as_pulsar_str());
            assert_eq!(quoted.parse::<Compatibility>().ok(), Some(strategy));
        }
        assert!(matches!(
            "ALWAYS_COMPATIBLE".parse::<Compatibility>(),
            Err(CompatibilityError::UnknownStrategy { .. })
        ));
    }
}
