use crate::error::ErrorKind;

/// A refusal by the domain model. The Python `ExcepcionDominio` hierarchy, as one enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// A [`BusinessRule`](super::BusinessRule) is not satisfied (`ReglaNegocioExcepcion`).
    #[error("{message}")]
    BusinessRule {
        /// The rule's name, e.g. `"MinimoUnItinerario"`.
        rule: &'static str,
        /// The rule's explanation, meant for the end user.
        message: String,
    },
    /// Something tried to change an entity's id once it was set
    /// (`IdDebeSerInmutableExcepcion`).
    #[error("the id of {entity} cannot change once it is set")]
    ImmutableId {
        /// The entity type.
        entity: &'static str,
    },
    /// The operation is not allowed in the aggregate's current state (e.g. paying a cancelled
    /// reservation).
    #[error("cannot {action} {entity} in state {state}")]
    InvalidTransition {
        /// The entity type.
        entity: &'static str,
        /// The state it is in.
        state: String,
        /// What was attempted.
        action: &'static str,
    },
    /// A factory could not build the object (`ExcepcionFabrica`).
    #[error("cannot build {target}: {reason}")]
    Factory {
        /// What the factory was building.
        target: &'static str,
        /// Why it could not.
        reason: String,
    },
    /// A value is malformed (a date that does not parse, an empty code…).
    #[error("invalid {field}: {reason}")]
    InvalidValue {
        /// The field or value object.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl DomainError {
    /// Classifies the refusal: transitions are conflicts with current state, the rest is
    /// invalid input.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DomainError::InvalidTransition { .. } | DomainError::ImmutableId { .. } => {
                ErrorKind::Conflict
            }
            DomainError::BusinessRule { .. }
            | DomainError::Factory { .. }
            | DomainError::InvalidValue { .. } => ErrorKind::Invalid,
        }
    }

    /// A malformed value.
    pub fn invalid_value(field: impl Into<String>, reason: impl Into<String>) -> Self {
        DomainError::InvalidValue {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
