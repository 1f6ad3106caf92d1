//! The one error type every fallible `seedwork` operation returns.
//!
//! Handlers, repositories, stores and brokers all speak [`Error`], so a command handler can use
//! `?` on a business rule, a repository call and a publish alike, and the HTTP edge of an
//! application can map each variant to a status code in one place (see [`ErrorKind`]).

use std::fmt;

use crate::domain::DomainError;

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
    /// A payload could not be encoded or decoded.
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
    /// The message broker failed or is unreachable.
    #[error("broker: {0}")]
    Broker(#[source] BoxError),
    /// Any other failure raised by application code.
    #[error("{0}")]
    Other(#[source] BoxError),
}

/// A coarse classification of [`Error`], for mapping to protocol status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input broke a business rule or was otherwise invalid (HTTP 400/422).
    Invalid,
    /// The target does not exist (HTTP 404).
    NotFound,
    /// The operation conflicts with the current state (HTTP 409).
    Conflict,
    /// A fault of the system, not of the caller (HTTP 500/503).
    Internal,
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

    /// Wraps any other failure.
    pub fn other(error: impl Into<BoxError>) -> Self {
        Error::Other(error.into())
    }

    /// A codec failure for `type_name`.
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
            Error::Codec { .. } => ErrorKind::Invalid,
            Error::NoHandler { .. }
            | Error::UnitOfWork(_)
            | Error::Store(_)
            | Error::Broker(_)
            | Error::Other(_) => ErrorKind::Internal,
        }
    }
}

/// Errors found while building a [`Bus`](crate::application::Bus): a misconfiguration, reported
/// before any message is dispatched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
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
}
