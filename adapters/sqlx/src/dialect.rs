//! What the shared store, transaction and repository need from a database: the [`Dialect`].
//!
//! [`SqlStore`](crate::SqlStore), [`SqlTransaction`](crate::SqlTransaction) and
//! [`JsonRepository`](crate::JsonRepository) are written once, generic over a dialect; each
//! backend module supplies one ([`Sqlite`](crate::sqlite::Sqlite),
//! [`Postgres`](crate::postgres::Postgres)) with its SQL text, how it opens a transaction and how
//! it binds a list of sequences or keys. The trait is sealed: the crate's two backends are the
//! only implementations.
//!
//! sqlx's generic bounds (`i64: Encode<'q, DB>`, `&mut DB::Connection: Executor`, …) are not
//! implied by a trait's `where` clauses, only by bounds on its associated types. So the bounds
//! live in the helper traits [`Driver`], [`Encodes`] and [`Decodes`], which every sqlx backend
//! implements through blanket impls, and [`Dialect::Db`] names them once: code generic over
//! `D: Dialect` needs no `where` clause of its own.

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use std::sync::Arc;

use sqlx::migrate::Migrate;

use crate::shared::writer_gate::{Turn, WriterGate};
use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use tokio::task::JoinHandle;

pub(crate) mod sealed {
    /// Keeps [`Dialect`](super::Dialect) implemented by this crate's backends only.
    pub trait Sealed {}
}

/// A database the shared code can run on: its sqlx driver, its SQL text and its few
/// behaviours of its own. Sealed; implemented by [`Sqlite`](crate::sqlite::Sqlite) and
/// [`Postgres`](crate::postgres::Postgres).
pub trait Dialect: sealed::Sealed + Send + Sync + Sized + 'static {
    /// The sqlx driver, with every bound the shared code relies on.
    #[doc(hidden)]
    type Db: Driver
        + sqlx::database::HasStatementCache
        + Encodes<i64>
        + Encodes<String>
        + Encodes<Option<String>>
        + Encodes<Option<i64>>
        + Encodes<Self::Sequences>
        + Encodes<Self::Keys>
        + Decodes<i64>
        + Decodes<Option<i64>>
        + Decodes<String>
        + Decodes<Option<String>>;

    /// How a list of outbox sequences is bound as one parameter.
    #[doc(hidden)]
    type Sequences: Clone + Send + 'static;

    /// How a list of message keys is bound as one parameter.
    #[doc(hidden)]
    type Keys: Send + 'static;

    /// The statements, in this dialect's SQL.
    #[doc(hidden)]
    const SQL: Statements;

    /// The durable transport's statements, in this dialect's SQL.
    #[doc(hidden)]
    const TRANSPORT: TransportStatements;

    /// The statement that opens every transaction; `None` is the driver's plain `BEGIN`.
    #[doc(hidden)]
    const BEGIN: Option<&'static str>;

    /// Whether one call may carry several statements with their binds (SQLite). A unit of work
    /// then opens its transaction with its first statement where it can, and sends its last
    /// writes with its `COMMIT` (see `shared/commit_tail.rs`): fewer hand-offs to the
    /// connection's thread.
    #[doc(hidden)]
    const BATCHES_STATEMENTS: bool = false;

    /// The migrations shipped for this backend.
    #[doc(hidden)]
    fn migrator() -> &'static sqlx::migrate::Migrator;

    /// The list parameter for these outbox sequences.
    #[doc(hidden)]
    fn sequences(sequences: &[i64]) -> Result<Self::Sequences, serde_json::Error>;

    /// The list parameter for these message keys.
    #[doc(hidden)]
    fn keys(keys: &[String]) -> Result<Self::Keys, serde_json::Error>;

    /// How many rows a statement changed.
    #[doc(hidden)]
    fn rows_affected(result: &<Self::Db as Database>::QueryResult) -> u64;

    /// The gate the writers to `pool`'s database take turns at in this process (see
    /// `shared/writer_gate.rs`); none by default.
    #[doc(hidden)]
    fn writer_gate(_pool: &sqlx::Pool<Self::Db>) -> WriterGate {
        WriterGate::open()
    }

    /// Starts a task that forwards wake-ups published by other processes (see
    /// [`TransportStatements::notify`]) to the transport's consumers in this one; `None` (the
    /// default) when the dialect has no such channel and consumers of other processes poll.
    #[doc(hidden)]
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn spawn_listener(
        _pool: &sqlx::Pool<Self::Db>,
        _wakers: Arc<crate::transport::Wakers>,
    ) -> Option<JoinHandle<()>> {
        None
    }
}

/// The SQL text of every statement the shared code runs, one set per dialect (see
/// `src/sqlite/sql.rs` and `src/postgres/sql.rs`). The comment on each field says what the
/// statement binds, in order, and which columns it returns.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Statements {
    /// Binds the scan size; returns `sequence, message_key, lease_owner, lease_until` of the
    /// first unpublished outbox rows the claimant may lock, in sequence order, leaving out
    /// parked rows and every row behind a parked row of its key.
    pub scan_outbox: &'static str,
    /// Binds the last scanned sequence and the keys; returns `sequence, message_key` of every
    /// unpublished row of those keys up to that sequence, locked or not.
    pub key_history: &'static str,
    /// Binds the claimant, the lease end and the sequences; leases the rows.
    pub lease: &'static str,
    /// Binds the sequences; returns `sequence, topic, message_key, envelope, properties` (the
    /// last two as JSON text), in sequence order.
    pub fetch_claimed: &'static str,
    /// Binds the time, the claimant and the sequences; marks the claimant's rows published.
    pub mark_published: &'static str,
    /// Binds the claimant and the sequences; drops the claimant's leases on unpublished rows.
    pub release: &'static str,
    /// Binds the new lease end, the claimant and the sequences; extends the claimant's leases
    /// on unpublished rows.
    pub renew: &'static str,
    /// Binds the error text, the attempt limit, the time, the sequence and the claimant; counts
    /// a failed publish of a row the claimant holds, drops the lease, parks the row at the
    /// limit, and returns its `parked_at` (no row when the claimant did not hold it).
    pub record_failure: &'static str,
    /// Binds the sequence to list after (0 for all) and the limit; returns `sequence, topic,
    /// message_key, envelope, properties, attempts, last_error, parked_at` of parked rows in
    /// sequence order.
    pub parked: &'static str,
    /// Binds the sequence; puts a parked row back to pending with no attempts.
    pub redrive: &'static str,
    /// Binds the sequence; deletes a parked row.
    pub discard: &'static str,
    /// Returns `oldest` (the `created_at` of the oldest unpublished, unparked row, or NULL),
    /// `pending` and `parked` (row counts).
    pub lag: &'static str,
    /// Binds the cut-off time; deletes rows published at or before it.
    pub purge: &'static str,
    /// Returns the number of unpublished rows.
    pub pending: &'static str,
    /// Binds `message_id, topic, message_key, envelope, properties, created_at` (JSON as text).
    pub insert_outbox: &'static str,
    /// Binds `consumer, message_id, processed_at`; inserts nothing when the pair is known.
    pub insert_inbox: &'static str,
    /// Binds `consumer`, a list of distinct message ids (as [`Dialect::keys`]) and
    /// `processed_at`; inserts the pairs not known yet and returns each one's `message_id`.
    pub insert_inbox_many: &'static str,
    /// Binds the cut-off time; deletes inbox rows processed at or before it.
    pub purge_inbox: &'static str,
    /// Binds the aggregate type and id; returns `version, data` (JSON as text).
    pub aggregate_get: &'static str,
    /// As `aggregate_get`, inside a transaction, holding the row until the commit where the
    /// dialect needs a lock for that.
    pub aggregate_get_for_update: &'static str,
    /// Binds the aggregate type, the cursor (the last id of the previous page, or NULL) and the
    /// limit; returns `version, data` ordered by id.
    pub aggregate_list: &'static str,
    /// Binds the aggregate type, id, document and time; inserts version 1, or nothing when the
    /// id is taken.
    pub aggregate_insert: &'static str,
    /// Binds the document, time, aggregate type, id and expected version; replaces that
    /// version only.
    pub aggregate_update: &'static str,
    /// Binds the aggregate type and id.
    pub aggregate_delete: &'static str,
    /// Binds the saga and the correlation id; returns `version, data` (JSON as text).
    pub saga_get: &'static str,
    /// As `saga_get`, inside a transaction, holding the row until the commit where the dialect
    /// needs a lock for that.
    pub saga_get_for_update: &'static str,
    /// Binds `saga, correlation_id, status, deadline_at, data, updated_at`; inserts version 1,
    /// or nothing when the instance exists.
    pub saga_insert: &'static str,
    /// Binds `status, deadline_at, data, updated_at`, the saga, the correlation id and the
    /// expected version; replaces that version only, with the next.
    pub saga_update: &'static str,
    /// Binds the correlation id; returns `version, data` of every saga's instance, by saga.
    pub saga_find: &'static str,
    /// Binds the time and the limit; returns `saga, correlation_id` of the instances whose
    /// deadline is at or before the time, earliest first.
    pub saga_due: &'static str,
    /// How the dialect appends events and gives them positions.
    pub event_append: EventAppend,
    /// Binds the stream type, the stream id and a version; returns the stream's events above
    /// it (`position, version, event_type, event_version, data, occurred_at`: not the stream's
    /// columns, which the caller knows), in version order.
    pub event_load: &'static str,
    /// Binds a position and the limit; returns the events above it, in position order, that
    /// no transaction still in progress can precede (see [`EventAppend`]).
    pub event_read_all: &'static str,
    /// Returns `position`, the highest position committed (0 when there is no event), whether
    /// or not `event_read_all` answers it yet.
    pub event_last_position: &'static str,
    /// Binds `stream_type, stream_id, version, state, updated_at`; inserts or replaces the
    /// snapshot when its version is higher than the stored one.
    pub snapshot_save: &'static str,
    /// Binds the stream type and id; returns `version, state` (JSON as text).
    pub snapshot_load: &'static str,
}

/// How a dialect appends events and where their global positions come from.
///
/// Either way a reader following positions never skips an event: every event that
/// `event_read_all` has not answered yet will be answered at a position above every position
/// it has answered.
#[derive(Debug, Clone, Copy)]
pub enum EventAppend {
    /// One statement per event, which checks that the stream is at `version - 1` and inserts
    /// the event one position above the highest stored (SQLite). Only for a database whose
    /// writers take turns: each append sees every commit before it, so positions increase in
    /// commit order. Binds `stream_type, stream_id, version, event_type, event_version, data,
    /// occurred_at, recorded_at`; inserts nothing when the stream is at another version or the
    /// version is taken.
    AfterHighest(&'static str),
    /// One statement per event, which checks that the stream is at `version - 1` and inserts
    /// the event at a position made of the appending transaction's id and the event's rank in
    /// that transaction (PostgreSQL). Appends never wait for each other (only for a
    /// concurrent append to the same stream); `event_read_all` answers only events of
    /// transactions older than every transaction still in progress, so one that commits late
    /// is never passed over. Binds what [`AfterHighest`](Self::AfterHighest) binds, then the
    /// rank (below [`EVENTS_PER_TRANSACTION`]).
    PerTransaction(&'static str),
}

/// At most how many events one transaction appends where positions are made of the
/// transaction's id and a rank ([`EventAppend::PerTransaction`]): 2^20, so that positions of
/// transaction ids up to 2^43 fit in a `BIGINT`.
pub const EVENTS_PER_TRANSACTION: u64 = 1 << 20;

/// The SQL text of the durable transport's statements (see [`crate::transport`]), one set per
/// dialect, next to its [`Statements`]. The comment on each field says what the statement
/// binds, in order, and which columns it returns.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct TransportStatements {
    /// Binds a JSON list of `[topic, message_key, envelope, properties]` arrays (the last two
    /// as JSON text, the key `null` when absent) and `published_at`; appends one log row per
    /// element, sequences in list order, adds each of them to every subscription of its
    /// topic, sends the dialect's wake-up (see `notify`) for each of their topics, and
    /// returns each new row's `sequence`. One statement for all of it: SQLite's log has a
    /// trigger that does the fan-out, PostgreSQL's statement is a data-modifying `WITH`.
    pub append_many: &'static str,
    /// Binds the payload (a topic, or empty for all); wakes the consumers of other processes
    /// when the transaction commits. `None` where the dialect has no such channel.
    pub notify: Option<&'static str>,
    /// Binds `topic, name, kind, durable (0 or 1), created_at`; creates the subscription at
    /// the current end of the log, or nothing when it exists.
    pub create_subscription: &'static str,
    /// Binds the topic and name; returns the subscription's `id, kind, durable` (0 or 1),
    /// locking it against concurrent attaches and claims where the dialect's transactions do
    /// not already.
    pub subscription: &'static str,
    /// Binds the subscription id; locks its row so that its claims take turns. `None` where
    /// opening the transaction ([`Dialect::BEGIN`]) already serialises them.
    pub lock_subscription: Option<&'static str>,
    /// Binds the subscription id and the time; deletes its consumers whose lease ran out.
    pub forget_expired: &'static str,
    /// Binds the subscription id; returns `consumers`, how many it has.
    pub count_consumers: &'static str,
    /// Binds the kind and the subscription id.
    pub set_kind: &'static str,
    /// Binds `subscription_id, attached_at, lease_until`; returns the new consumer's `id`.
    pub register: &'static str,
    /// Binds the subscription id, the scan size and the time; returns `sequence, message_key,
    /// visible_after, lease_owner` of its first rows in sequence order, each with `live`: the
    /// ids of the subscription's consumers whose lease has not run out, comma-separated in no
    /// particular order (NULL when there are none). One statement instead of two: on SQLite
    /// each is a hand-off to the connection's thread, on PostgreSQL a round trip.
    pub head: &'static str,
    /// Binds the consumer, the subscription id and a list of sequences; leases those rows and
    /// returns each one's `sequence` and new `deliveries` with its message: `topic,
    /// message_key, envelope, properties` (JSON as text), in no particular order.
    pub lease: &'static str,
    /// `head` preceded by the dialect's `BEGIN`, in one call (binds as `head`): a claim that
    /// settles nothing opens its transaction with its first read. `None` where a call runs
    /// one statement (PostgreSQL's extended protocol); the claim then opens it apart.
    pub begin_and_head: Option<&'static str>,
    /// `lease` followed by `COMMIT`, in one call (binds as `lease`); `None` as above.
    pub lease_and_commit: Option<&'static str>,
    /// Binds the subscription id, sequence, consumer and attempt; deletes the row if held so.
    pub ack: &'static str,
    /// Binds the subscription id, the consumer, a list of sequences and the list of their
    /// attempts (same length, pairwise); deletes each row the consumer holds at that attempt.
    pub ack_many: &'static str,
    /// Binds the visible-after time, then as `ack`; releases the row for a later redelivery.
    pub retry_later: &'static str,
    /// Binds the new lease end, the consumer and the time; extends a lease still running.
    pub heartbeat: &'static str,
    /// Binds the consumer; deletes its registration.
    pub unregister: &'static str,
    /// Binds the subscription id and the time; deletes the subscription (its messages and
    /// registrations go with it) if it is non-durable and none of its consumers' leases is
    /// still running.
    pub drop_if_unattached: &'static str,
    /// Binds the subscription id; deletes it (its messages and registrations go with it).
    pub delete_subscription: &'static str,
    /// Binds the time; deletes every non-durable subscription none of whose consumers' leases
    /// is still running (their processes died without detaching), passing over any another
    /// transaction holds.
    pub drop_abandoned: &'static str,
    /// Binds the consumer; releases every row it holds.
    pub release: &'static str,
    /// Binds the cut-off time; deletes older log rows no subscription still holds.
    pub purge: &'static str,
}

/// A sqlx driver whose connections execute statements and run migrations, and whose arguments
/// bind; every sqlx backend is one.
#[doc(hidden)]
pub trait Driver: Database<Arguments: IntoArguments<Self>, Connection: Migrate> {
    /// The connection as an executor.
    fn executor(connection: &mut Self::Connection) -> impl Executor<'_, Database = Self>;
}

impl<DB> Driver for DB
where
    DB: Database<Arguments: IntoArguments<DB>, Connection: Migrate>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    fn executor(connection: &mut DB::Connection) -> impl Executor<'_, Database = DB> {
        connection
    }
}

/// A statement with its arguments, on driver `DB`.
#[doc(hidden)]
pub type Statement<'q, DB> = Query<'q, DB, <DB as Database>::Arguments>;

/// A driver that can bind a `T`.
#[doc(hidden)]
pub trait Encodes<T>: Database {
    /// Binds `value` as the statement's next parameter.
    fn bind_to<'q>(statement: Statement<'q, Self>, value: T) -> Statement<'q, Self>;
}

impl<DB, T> Encodes<T> for DB
where
    DB: Database,
    T: for<'t> Encode<'t, DB> + Type<DB>,
{
    fn bind_to<'q>(statement: Statement<'q, Self>, value: T) -> Statement<'q, Self> {
        statement.bind(value)
    }
}

/// A driver that can read a `T` from a named column.
#[doc(hidden)]
pub trait Decodes<T>: Database {
    /// Reads the column `column` of `row`.
    fn read(row: &Self::Row, column: &str) -> Result<T, sqlx::Error>;
}

impl<DB, T> Decodes<T> for DB
where
    DB: Database,
    T: for<'r> Decode<'r, DB> + Type<DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
{
    fn read(row: &Self::Row, column: &str) -> Result<T, sqlx::Error> {
        row.try_get(column)
    }
}

/// `.arg(value)`: [`Query::bind`] through [`Encodes`], for code generic over the driver.
pub(crate) trait Bind<DB: Database>: Sized {
    fn arg<T>(self, value: T) -> Self
    where
        DB: Encodes<T>;
}

impl<'q, DB: Database> Bind<DB> for Statement<'q, DB> {
    fn arg<T>(self, value: T) -> Self
    where
        DB: Encodes<T>,
    {
        DB::bind_to(self, value)
    }
}

/// The connection of dialect `D`'s driver.
pub(crate) type Connection<D> = <<D as Dialect>::Db as Database>::Connection;

/// The row type of dialect `D`'s driver.
pub(crate) type DbRow<D> = <<D as Dialect>::Db as Database>::Row;

/// An open transaction of dialect `D`, holding its writer's turn at the [`WriterGate`] until
/// it commits, rolls back or is dropped. Use it as the `sqlx::Transaction` it derefs to.
pub(crate) struct Tx<D: Dialect> {
    // Declared first, dropped first: the transaction ends before the next writer's turn.
    tx: sqlx::Transaction<'static, D::Db>,
    _turn: Turn,
}

impl<D: Dialect> Tx<D> {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl<D: Dialect> std::ops::Deref for Tx<D> {
    type Target = sqlx::Transaction<'static, D::Db>;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl<D: Dialect> std::ops::DerefMut for Tx<D> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// Opens a transaction the way dialect `D` wants ([`Dialect::BEGIN`]), once `gate` gives this
/// writer its turn.
pub(crate) async fn open_transaction<D: Dialect>(
    pool: &sqlx::Pool<D::Db>,
    gate: &WriterGate,
) -> Result<Tx<D>, sqlx::Error> {
    let turn = gate.enter().await?;
    let tx = match D::BEGIN {
        Some(sql) => pool.begin_with(sql).await?,
        None => pool.begin().await?,
    };
    Ok(Tx { tx, _turn: turn })
}

/// A transaction its owner opens and ends with its own statements, each sent together with
/// another one (`BEGIN IMMEDIATE; SELECT …`, `UPDATE …; COMMIT`), instead of through
/// `sqlx::Transaction`, which sends `BEGIN` and `COMMIT` on their own. SQLite runs several
/// statements with their binds in one call, and on this crate's workloads each call, a
/// hand-off to the connection's thread, costs more than the statement in it.
///
/// sqlx does not know that the connection is in a transaction, so it must not go back to the
/// pool inside one: until [`ended`](Self::ended) says the owner's last statement ended it,
/// dropping this (an error, a cancelled future) closes the connection instead, and SQLite rolls
/// back whatever the transaction did. The writer's turn is held until then, like [`Tx`]'s.
pub(crate) struct ManualTx<D: Dialect> {
    // Declared first, dropped first: the connection goes before the next writer's turn.
    connection: sqlx::pool::PoolConnection<D::Db>,
    ended: bool,
    _turn: Turn,
}

impl<D: Dialect> ManualTx<D> {
    /// A pooled connection and the writer's turn; the owner's first statement opens the
    /// transaction.
    pub(crate) async fn acquire(
        pool: &sqlx::Pool<D::Db>,
        gate: &WriterGate,
    ) -> Result<Self, sqlx::Error> {
        let turn = gate.enter().await?;
        let connection = pool.acquire().await?;
        Ok(ManualTx {
            connection,
            ended: false,
            _turn: turn,
        })
    }

    /// The connection, for the owner's statements.
    pub(crate) fn connection(&mut self) -> &mut Connection<D> {
        &mut self.connection
    }

    /// The owner's last statement committed (or rolled back) the transaction: the connection
    /// goes back to the pool.
    pub(crate) fn ended(mut self) {
        self.ended = true;
    }
}

impl<D: Dialect> Drop for ManualTx<D> {
    fn drop(&mut self) {
        if !self.ended {
            self.connection.close_on_drop();
        }
    }
}

/// A statement of dialect `D` (bind with [`Bind::arg`]).
pub(crate) fn statement<D: Dialect>(sql: &'static str) -> Statement<'static, D::Db> {
    sqlx::query(sql)
}

/// `D`'s connection as an executor.
pub(crate) fn on<D: Dialect>(
    connection: &mut Connection<D>,
) -> impl Executor<'_, Database = D::Db> {
    <D::Db as Driver>::executor(connection)
}

/// Reads the column `column` of a row of dialect `D`.
pub(crate) fn column<D: Dialect, T>(row: &DbRow<D>, column: &str) -> Result<T, sqlx::Error>
where
    D::Db: Decodes<T>,
{
    <D::Db as Decodes<T>>::read(row, column)
}
