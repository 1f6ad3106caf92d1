use std::fmt;

use crate::error::HandlerKind;

/// One problem in a bus configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildProblem {
    /// No store was given to [`BusBuilder::store`](super::BusBuilder::store): units of work
    /// would have nowhere to commit. An application that wants the non-durable in-memory store
    /// says so by passing a `MemoryStore`.
    #[error(
        "no store was given to the bus builder (BusBuilder::store): pass a durable store \
         (seedwork-sqlx) or, for tests and an explicit in-memory mode, a MemoryStore"
    )]
    MissingStore,
    /// Two handlers were registered for one command, query or message type.
    #[error("two {kind} handlers for `{type_name}`: `{first}` and `{second}`")]
    DuplicateHandler {
        /// Command, query or message.
        kind: HandlerKind,
        /// The message type with two handlers.
        type_name: String,
        /// The handler registered first.
        first: String,
        /// The handler registered second.
        second: String,
    },
    /// A handler needs a dependency that the application did not provide.
    #[error("handler `{handler}` needs `{dependency}`, which was not provided to the bus builder")]
    MissingDependency {
        /// The handler that declared the dependency.
        handler: String,
        /// The dependency's type name.
        dependency: &'static str,
    },
    /// A saga's definition cannot run as written (no starting message, a step with no reply…).
    #[error("saga `{saga}` is invalid: {problem}")]
    InvalidSaga {
        /// The saga's name.
        saga: String,
        /// What is wrong.
        problem: String,
    },
}

/// Everything wrong with a bus configuration, as found by
/// [`BusBuilder::build`](super::BusBuilder::build): every problem at once, so a misconfigured
/// application is fixed in one round rather than one error per restart.
///
/// ```
/// use seedwork::application::{Bus, BuildProblem};
///
/// let err = Bus::builder().build().unwrap_err();
/// assert_eq!(err.problems(), &[BuildProblem::MissingStore]);
/// assert!(err.to_string().contains("BusBuilder::store"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    problems: Vec<BuildProblem>,
}

impl BuildError {
    /// Wraps the problems found (at least one).
    pub(crate) fn new(problems: Vec<BuildProblem>) -> Self {
        debug_assert!(
            !problems.is_empty(),
            "a build error names at least one problem"
        );
        BuildError { problems }
    }

    /// Every problem, in the order found (never empty).
    pub fn problems(&self) -> &[BuildProblem] {
        &self.problems
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [only] => write!(f, "the bus cannot be built: {only}"),
            problems => {
                write!(f, "the bus cannot be built ({} problems):", problems.len())?;
                for (n, problem) in problems.iter().enumerate() {
                    write!(f, "\n  {}. {problem}", n + 1)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for BuildError {}

impl From<BuildProblem> for BuildError {
    fn from(problem: BuildProblem) -> Self {
        BuildError {
            problems: vec![problem],
        }
    }
}
