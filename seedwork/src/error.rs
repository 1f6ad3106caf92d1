//! The one error type every fallible `seedwork` operation returns.
//!
//! Handlers, repositories, stores and brokers all speak [`Error`], so a command handler can use
//! `?` on a business rule, a repository call and a publish alike, and the HTTP edge of an
//! application can map each variant to a status code in one place (see [`ErrorKind`]).
//!
//! This module is the bottom of the crate's layers: it imports nothing from the rest of the
//! crate. [`DomainError`] lives here for that reason (it is one of [`Error`]'s variants) and is
//! published as `seedwork::domain::DomainError`.

use std::fmt;

/// A boxed error from a lower layer (a database driver, a broker client, a codec).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for `Result<T, seedwork::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of handler a dispatch was looking for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandlerKind {
    /// A command handler (exactly one per command type).
    Command,
    /// A query handler (exactly one per query type).
    Query,
    /// A domain-event handler (any number per event type).
    DomainEvent,
    /// An integration-message handler (exactly one per message type name).
    Message,
}

impl fmt::Display for HandlerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandlerKind::Command => "command",
            HandlerKind::Query => "query",
            HandlerKind::DomainEvent => "domain event",
            HandlerKind::Message => "integration message",
        })
    }
}

/// Everything that can go wrong in a `seedwork` operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The domain refused the operation: a broken business rule, an illegal state transition…
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The entity the operation needs does not exist.
    #[error("{entity} `{id}` was not found")]
    NotFound {
        /// The kind of entity (e.g. `"Reserva"`).
        entity: &'static str,
        /// The id that was looked up.
        id: String,
    },
    /// Optimistic concurrency: someone else changed the aggregate since it was loaded.
    #[error("{aggregate} `{id}` was changed concurrently (expected version {expected})")]
    Conflict {
        /// The aggregate type.
        aggregate: &'static str,
        /// The aggregate id.
        id: String,
        /// The version the caller loaded and expected to replace.
        expected: u64,
    },
    /// Nothing is registered to handle this message (the Python "no implementation for command
    /// of type X").
    #[error("no {kind} handler is registered for `{type_name}`")]
    NoHandler {
        /// What kind of handler was looked for.
        kind: HandlerKind,
        /// The Rust type name (or message type name) that had no handler.
        type_name: String,
    },
    /// Input from outside the system (a received message's payload, a caller's document) does
    /// not fit the type it must decode to: the sender's fault, not the system's.
    #[error("invalid `{type_name}`: {source}")]
    InvalidInput {
        /// The type (or message type name) the input was decoded to.
        type_name: String,
        /// What the decoder reported.
        #[source]
        source: BoxError,
    },
    /// Data the system itself wrote cannot be read back (a stored aggregate, an outbox row), or
    /// a value cannot be encoded: a fault of the system, never of the caller.
    #[error("could not encode or decode `{type_name}`: {source}")]
    Codec {
        /// The type (or message type name) being encoded or decoded.
        type_name: String,
        /// What the codec reported.
        #[source]
        source: BoxError,
    },
    /// The unit of work was used in a way its contract forbids (an unknown savepoint, a
    /// repository of another backend, runaway domain-event handlers).
    #[error("unit of work: {0}")]
    UnitOfWork(String),
    /// The database (or the in-memory store) failed.
    #[error("store: {0}")]
    Store(#[source] BoxError),
    /// The message broker failed or refused the operation (for a broker that cannot be reached
    /// at all, see [`Error::Unavailable`]).
    #[error("broker: {0}")]
    Broker(#[source] BoxError),
    /// The store or the broker cannot do it *right now*, for a reason outside the request or
    /// message: a connection refused or lost, a pool exhausted, the database locked or busy, a
    /// server shutting down, a serialization failure. The same operation is expected to succeed
    /// once it is back, so consumers wait and retry it without counting it against the
    /// message ([`Error::is_transient`]); an HTTP edge answers 503.
    #[error("unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// Any other failure raised by application code.
    #[error("{0}")]
    Other(#[source] BoxError),
}

/// A coarse classification of [`Error`], for mapping to protocol status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input broke a business rule or was otherwise invalid (HTTP 400/422).
    Invalid,
    /// The target does not exist (HTTP 404).
    NotFound,
    /// The operation conflicts with the current state (HTTP 409).
    Conflict,
    /// A fault of the system, not of the caller (HTTP 500).
    Internal,
    /// A store or broker is unreachable or busy for now; the same request may succeed later
    /// (HTTP 503).
    Unavailable,
}

impl Error {
    /// Wraps a database or store failure.
    pub fn store(error: impl Into<BoxError>) -> Self {
        Error::Store(error.into())
    }

    /// Wraps a broker failure.
    pub fn broker(error: impl Into<BoxError>) -> Self {
        Error::Broker(error.into())
    }

    /// Wraps a failure that is expected to pass: the store or broker is unreachable, busy or
    /// restarting (classified [`ErrorKind::Unavailable`]).
    pub fn unavailable(error: impl Into<BoxError>) -> Self {
        Error::Unavailable(error.into())
    }

    /// Whether retrying the same operation later is expected to succeed without any change to
    /// its input: true only for [`Error::Unavailable`].
    ///
    /// A consumer uses it to tell an outage (wait, retry, do not count the delivery) from a
    /// message that fails on its own (count it, and dead-letter it in the end).
    ///
    /// ```
    /// use seedwork::Error;
    /// assert!(Error::unavailable("connection refused").is_transient());
    /// assert!(!Error::store("no such table").is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }

    /// Whether the error is a refusal of the input itself — a business rule, an illegal
    /// transition, a malformed value ([`Error::Domain`]), or input that does not decode
    /// ([`Error::InvalidInput`]) — so that the same input will be refused again however often
    /// it is retried. A consumer dead-letters such a message at once, with this error as the
    /// reason.
    ///
    /// ```
    /// use seedwork::{domain::DomainError, Error};
    /// assert!(Error::from(DomainError::invalid_value("fecha", "not a date")).is_refusal());
    /// assert!(!Error::unavailable("connection refused").is_refusal());
    /// ```
    pub fn is_refusal(&self) -> bool {
        matches!(self, Error::Domain(_) | Error::InvalidInput { .. })
    }

    /// Wraps any other failure.
    pub fn other(error: impl Into<BoxError>) -> Self {
        Error::Other(error.into())
    }

    /// Input from outside that does not decode as `type_name` (classified
    /// [`ErrorKind::Invalid`]).
    pub fn invalid_input(type_name: impl Into<String>, error: impl Into<BoxError>) -> Self {
        Error::InvalidInput {
            type_name: type_name.into(),
            source: error.into(),
        }
    }

    /// Stored data that does not decode as `type_name`, or a value that does not encode
    /// (classified [`ErrorKind::Internal`]).
    pub fn codec(type_name: impl Into<String>, error: impl Into<BoxError>) -> Self {
        Error::Codec {
            type_name: type_name.into(),
            source: error.into(),
        }
    }

    /// A "not found" error for `entity` with `id`.
    pub fn not_found(entity: &'static str, id: impl fmt::Display) -> Self {
        Error::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// Classifies the error, e.g. to choose an HTTP status code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Domain(domain) => domain.kind(),
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::InvalidInput { .. } => ErrorKind::Invalid,
            Error::Codec { .. }
            | Error::NoHandler { .. }
            | Error::UnitOfWork(_)
            | Error::Store(_)
            | Error::Broker(_)
            | Error::Other(_) => ErrorKind::Internal,
            Error::Unavailable(_) => ErrorKind::Unavailable,
        }
    }
}

/// A refusal by the domain model. The Python `ExcepcionDominio` hierarchy, as one enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// A business rule is not satisfied (`ReglaNegocioExcepcion`); see
    /// `seedwork::domain::check_rule`.
    #[error("{message}")]
    BusinessRule {
        /// The rule's name, e.g. `"MinimoUnItinerario"`.
        rule: &'static str,
        /// The rule's explanation, meant for the end user.
        message: String,
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
    /// A value is malformed (a date that does not parse, an empty code…); what a factory
    /// (`ExcepcionFabrica`) reports when its input cannot build the object.
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
            DomainError::InvalidTransition { .. } => ErrorKind::Conflict,
            DomainError::BusinessRule { .. } | DomainError::InvalidValue { .. } => {
                ErrorKind::Invalid
            }
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
