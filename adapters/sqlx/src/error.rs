//! The adapter's own errors: what failed, with the sqlx or serde_json error beneath.
//!
//! They are private to the crate. At the boundary a [`SqlxError`] becomes a
//! [`seedwork::Error`] (see its `From` impl) and travels as that error's boxed `source`, so a
//! caller who needs the detail can still reach it through [`std::error::Error::source`], while
//! the types themselves stay free to change.
//!
//! Each message names the failing step and then, after a colon, what the layer beneath
//! reported, in the same style as [`seedwork::Error`]'s own messages.

use std::fmt;

/// A statement the adapter runs, named for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    OutboxScan,
    OutboxKeyHistory,
    OutboxLease,
    OutboxFetch,
    MarkPublished,
    Release,
    Purge,
    Pending,
    Renew,
    RecordFailure,
    ListParked,
    Redrive,
    Discard,
    Lag,
    OutboxAppend,
    InboxInsert,
    Acknowledge,
    InboxPurge,
    AggregateGet,
    AggregateList,
    AggregateInsert,
    AggregateUpdate,
    AggregateDelete,
    SagaGet,
    SagaSave,
    SagaFind,
    SagaDue,
    EventAppend,
    EventLoad,
    EventReadAll,
    SnapshotSave,
    SnapshotLoad,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::OutboxScan => "claim: outbox scan",
            Operation::OutboxKeyHistory => "claim: earlier rows of the scanned keys",
            Operation::OutboxLease => "claim: lease",
            Operation::OutboxFetch => "claim: fetch the leased rows",
            Operation::MarkPublished => "mark published",
            Operation::Release => "release",
            Operation::Purge => "purge published",
            Operation::Pending => "count pending",
            Operation::Renew => "renew the lease",
            Operation::RecordFailure => "record a failed publish",
            Operation::ListParked => "list parked entries",
            Operation::Redrive => "re-drive a parked entry",
            Operation::Discard => "discard a parked entry",
            Operation::Lag => "measure the relay's lag",
            Operation::OutboxAppend => "outbox append",
            Operation::InboxInsert => "inbox insert",
            Operation::Acknowledge => "acknowledge deliveries in the transaction",
            Operation::InboxPurge => "inbox purge",
            Operation::AggregateGet => "aggregate get",
            Operation::AggregateList => "aggregate list",
            Operation::AggregateInsert => "aggregate insert",
            Operation::AggregateUpdate => "aggregate update",
            Operation::AggregateDelete => "aggregate delete",
            Operation::SagaGet => "saga get",
            Operation::SagaSave => "saga save",
            Operation::SagaFind => "saga find",
            Operation::SagaDue => "saga deadlines",
            Operation::EventAppend => "event append",
            Operation::EventLoad => "event stream load",
            Operation::EventReadAll => "event log read",
            Operation::SnapshotSave => "snapshot save",
            Operation::SnapshotLoad => "snapshot load",
        })
    }
}

/// A failure of the database, or of data on its way in or out of it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SqlxError {
    /// The connection URL or options do not parse.
    #[error("connection options: {0}")]
    Options(#[source] sqlx::Error),
    /// No connection pool could be opened.
    #[error("connecting: {0}")]
    Connect(#[source] sqlx::Error),
    /// The shipped migrations could not be applied.
    #[error("applying the migrations: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A transaction could not start.
    #[error("beginning a transaction: {0}")]
    Begin(#[source] sqlx::Error),
    /// A transaction could not commit (it is rolled back).
    #[error("committing: {0}")]
    Commit(#[source] sqlx::Error),
    /// A transaction could not roll back.
    #[error("rolling back: {0}")]
    Rollback(#[source] sqlx::Error),
    /// A savepoint could not be set.
    #[error("savepoint `{name}`: {source}")]
    Savepoint {
        name: String,
        #[source]
        source: sqlx::Error,
    },
    /// The transaction could not roll back to a savepoint.
    #[error("rolling back to savepoint `{name}`: {source}")]
    RollbackToSavepoint {
        name: String,
        #[source]
        source: sqlx::Error,
    },
    /// A savepoint name that is not a plain identifier (it goes into SQL text, unbound).
    #[error("`{name}` is not a valid savepoint name (letters, digits and `_` only)")]
    SavepointName { name: String },
    /// A statement failed.
    #[error("{operation}: {source}")]
    Statement {
        operation: Operation,
        #[source]
        source: sqlx::Error,
    },
    /// A list parameter (sequences or keys) could not be encoded.
    #[error("{operation}: encoding a list parameter: {source}")]
    ListParameter {
        operation: Operation,
        #[source]
        source: serde_json::Error,
    },
    /// A column of a returned row does not decode as its expected type.
    #[error("{operation}: column `{column}`: {source}")]
    Column {
        operation: Operation,
        column: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// A value could not be encoded as JSON for storage.
    #[error("encoding `{type_name}` as JSON: {source}")]
    Encode {
        type_name: String,
        #[source]
        source: serde_json::Error,
    },
    /// A stored JSON document (an aggregate, an outbox envelope…) does not decode.
    #[error("stored `{type_name}` in `{table}` does not decode: {source}")]
    Decode {
        type_name: String,
        table: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl SqlxError {
    /// A [`Statement`](Self::Statement) failure of `operation`.
    pub(crate) fn statement(operation: Operation) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| SqlxError::Statement { operation, source }
    }

    /// A [`Column`](Self::Column) failure of `operation`.
    pub(crate) fn column(
        operation: Operation,
        column: &'static str,
    ) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| SqlxError::Column {
            operation,
            column,
            source,
        }
    }

    /// A [`ListParameter`](Self::ListParameter) failure of `operation`.
    pub(crate) fn list(operation: Operation) -> impl FnOnce(serde_json::Error) -> Self {
        move |source| SqlxError::ListParameter { operation, source }
    }
}

impl SqlxError {
    /// The driver error beneath, if there is one.
    fn driver_error(&self) -> Option<&sqlx::Error> {
        match self {
            SqlxError::Connect(source)
            | SqlxError::Begin(source)
            | SqlxError::Commit(source)
            | SqlxError::Rollback(source)
            | SqlxError::Savepoint { source, .. }
            | SqlxError::RollbackToSavepoint { source, .. }
            | SqlxError::Statement { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Whether a driver error means "not now" rather than "not this": the connection is gone or
/// cannot be made, the pool is exhausted or closed, SQLite is busy or locked, PostgreSQL is
/// shutting down, starting up, out of connections, or aborted the transaction for a
/// serialization failure or a deadlock. The same statement is expected to succeed later.
pub(crate) fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => {
            let Some(code) = database.code() else {
                return false;
            };
            // SQLite reports (extended) result codes as decimal numbers of at most four digits;
            // 5 is SQLITE_BUSY and 6 SQLITE_LOCKED, whatever their extended detail in the upper
            // bits. A PostgreSQL SQLSTATE has five characters, and many are all digits (22021,
            // 23505…): read as a SQLite code, 22021 & 0xff would be 5, "busy".
            if code.len() < 5 {
                if let Ok(sqlite_code) = code.parse::<i32>() {
                    return matches!(sqlite_code & 0xff, 5 | 6);
                }
            }
            // PostgreSQL SQLSTATEs: class 08 connection exceptions, 53 insufficient resources
            // (too many connections), 57P01–57P03 shutdown and startup, 40001 serialization
            // failure, 40P01 deadlock.
            code.starts_with("08")
                || code.starts_with("53")
                || matches!(&*code, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
        }
        _ => false,
    }
}

/// Whether the database refused a statement because of a value it was given — one it cannot
/// store or compare — rather than because it failed.
///
/// - PostgreSQL: SQLSTATE class `22`, data exception: among others `22021`
///   (character_not_in_repertoire: a NUL character in `text`), `22P05` (untranslatable
///   character: the `\u0000` escape in `jsonb`), `22001` (a string too long for its column) and
///   `22P02` (invalid text representation); and `54000` (program_limit_exceeded: a key too large
///   for its index, a `jsonb` document over its size limit).
/// - SQLite: `SQLITE_TOOBIG` (code 18): a string or document over the length limit.
///
/// Each driver reports its own kind of code through the same `code()`: a five-character
/// SQLSTATE for PostgreSQL, a decimal number (at most four digits) for SQLite, so the two sets
/// cannot be mistaken for each other.
fn refuses_value(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(database) = error else {
        return false;
    };
    match database.code().as_deref() {
        Some(code) if code.len() == 5 => code.starts_with("22") || code == "54000",
        Some(code) => code == "18",
        None => false,
    }
}

impl From<SqlxError> for seedwork::Error {
    /// A database that cannot be reached, is busy or is restarting ([`is_transient`]) becomes
    /// [`seedwork::Error::Unavailable`]. A statement the database refused because of a value it
    /// was given (see [`refuses_value`]: a NUL character on PostgreSQL, a key too large for an
    /// index…) becomes [`seedwork::Error::InvalidInput`], the caller's fault (a 4xx, not a 500),
    /// so an application is protected even where it did not check its input first. Data that
    /// cannot be encoded, or stored data that cannot be read back (a JSON document, a column),
    /// becomes [`seedwork::Error::Codec`], a fault of the system; a savepoint name that breaks
    /// the transaction's contract becomes [`seedwork::Error::UnitOfWork`]; everything else
    /// [`seedwork::Error::Store`]. The typed error is the boxed source.
    fn from(error: SqlxError) -> Self {
        if error.driver_error().is_some_and(is_transient) {
            return seedwork::Error::unavailable(error);
        }
        match error {
            SqlxError::Statement {
                operation,
                ref source,
            } if refuses_value(source) => {
                seedwork::Error::invalid_input(format!("value for {operation}"), error)
            }
            SqlxError::Encode { ref type_name, .. } | SqlxError::Decode { ref type_name, .. } => {
                seedwork::Error::codec(type_name.clone(), error)
            }
            SqlxError::Column { operation, .. } => {
                seedwork::Error::codec(format!("{operation} row"), error)
            }
            SqlxError::SavepointName { .. } => seedwork::Error::UnitOfWork(error.to_string()),
            other => seedwork::Error::store(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use seedwork::ErrorKind;

    use super::*;

    fn json_error() -> serde_json::Error {
        serde_json::from_str::<u32>("not json").unwrap_err()
    }

    #[test]
    fn corrupt_stored_data_is_a_codec_error_with_the_typed_source() {
        let error = seedwork::Error::from(SqlxError::Decode {
            type_name: "Cuenta".into(),
            table: "seedwork_aggregates",
            source: json_error(),
        });
        assert!(
            matches!(&error, seedwork::Error::Codec { type_name, .. } if type_name == "Cuenta"),
            "{error:?}"
        );
        assert_eq!(error.kind(), ErrorKind::Internal);
        let source = error.source().expect("a source");
        let typed = source.downcast_ref::<SqlxError>().expect("the typed error");
        assert!(matches!(typed, SqlxError::Decode { .. }));
        assert!(typed.source().unwrap().is::<serde_json::Error>());
    }

    #[test]
    fn driver_failures_are_store_errors() {
        let error = seedwork::Error::from(SqlxError::Statement {
            operation: Operation::AggregateGet,
            source: sqlx::Error::RowNotFound,
        });
        assert!(matches!(error, seedwork::Error::Store(_)), "{error:?}");
        assert_eq!(error.kind(), ErrorKind::Internal);
        assert!(!error.is_transient());
        assert!(error.to_string().contains("aggregate get"), "{error}");
        let typed = error.source().unwrap().downcast_ref::<SqlxError>().unwrap();
        assert!(typed.source().unwrap().is::<sqlx::Error>());
    }

    /// A database error with a given code, as a driver reports it.
    #[derive(Debug)]
    struct Refusal(&'static str);

    impl fmt::Display for Refusal {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "refused ({})", self.0)
        }
    }

    impl std::error::Error for Refusal {}

    impl sqlx::error::DatabaseError for Refusal {
        fn message(&self) -> &str {
            "refused"
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn refused(code: &'static str) -> seedwork::Error {
        seedwork::Error::from(SqlxError::Statement {
            operation: Operation::AggregateInsert,
            source: sqlx::Error::Database(Box::new(Refusal(code))),
        })
    }

    #[test]
    fn values_the_database_cannot_store_are_invalid_input() {
        // 22021: NUL in text; 22P05: \u0000 in jsonb; 22001: too long; 54000: index key too
        // large; 18: SQLITE_TOOBIG.
        for code in ["22021", "22P05", "22001", "22P02", "54000", "18"] {
            let error = refused(code);
            assert!(
                matches!(&error, seedwork::Error::InvalidInput { type_name, .. }
                    if type_name == "value for aggregate insert"),
                "{code}: {error:?}"
            );
            assert_eq!(error.kind(), ErrorKind::Invalid, "{code}");
            assert!(error.to_string().contains(code), "{code}: {error}");
            let typed = error.source().unwrap().downcast_ref::<SqlxError>().unwrap();
            assert!(matches!(typed, SqlxError::Statement { .. }));
        }
    }

    #[test]
    fn sqlstates_made_of_digits_are_not_read_as_sqlite_codes() {
        // 22021 & 0xff == 5 (SQLITE_BUSY), 23302 & 0xff == 6 (SQLITE_LOCKED): neither is busy.
        for code in ["22021", "23302"] {
            let error = refused(code);
            assert!(!error.is_transient(), "{code}: {error:?}");
        }
        assert!(refused("5").is_transient(), "SQLITE_BUSY");
        assert!(refused("517").is_transient(), "SQLITE_BUSY_SNAPSHOT");
        assert!(refused("40001").is_transient(), "serialization failure");
    }

    #[test]
    fn other_database_errors_stay_store_errors() {
        // 23505: unique violation; 42P01: undefined table; 54001: statement too complex;
        // 2067: SQLITE_CONSTRAINT_UNIQUE; 1: SQLITE_ERROR. (Busy, locked, serialization
        // failures and the like are `Unavailable`, see `is_transient`.)
        for code in ["23505", "42P01", "54001", "2067", "1", "22"] {
            let error = refused(code);
            assert!(
                matches!(error, seedwork::Error::Store(_)),
                "{code}: {error:?}"
            );
            assert_eq!(error.kind(), ErrorKind::Internal, "{code}");
        }
    }

    #[test]
    fn an_unreachable_or_busy_database_is_unavailable_with_the_typed_source() {
        let unreachable =
            || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        for error in [
            SqlxError::Statement {
                operation: Operation::OutboxAppend,
                source: sqlx::Error::PoolClosed,
            },
            SqlxError::Begin(sqlx::Error::PoolTimedOut),
            SqlxError::Commit(sqlx::Error::Io(unreachable())),
            SqlxError::Connect(sqlx::Error::Io(unreachable())),
        ] {
            let error = seedwork::Error::from(error);
            assert!(
                matches!(error, seedwork::Error::Unavailable(_)),
                "{error:?}"
            );
            assert!(error.is_transient());
            assert_eq!(error.kind(), ErrorKind::Unavailable);
            assert!(error.source().unwrap().is::<SqlxError>());
        }
    }

    #[test]
    fn a_bad_savepoint_name_breaks_the_unit_of_work_contract() {
        let error = seedwork::Error::from(SqlxError::SavepointName { name: "a b".into() });
        assert!(matches!(error, seedwork::Error::UnitOfWork(_)), "{error:?}");
    }
}
