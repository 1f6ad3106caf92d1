//! The durable transport: [`Publisher`] and [`Subscriber`] on the store's own database.
//!
//! [`SqliteTransport`](crate::SqliteTransport) and [`PostgresTransport`](crate::PostgresTransport)
//! (both [`SqlTransport`], on their dialect) are message brokers made of four tables (created
//! by the crate's migrations):
//!
//! - `seedwork_topic_log` — every published message (topic, key, envelope and properties as
//!   JSON, publish time) under one global `sequence`; append-only.
//! - `seedwork_subscriptions` — one row per (topic, name): its kind, whether it is durable and
//!   the log position it was created at. A durable subscription (the default) collects
//!   messages while no consumer is attached. A non-durable one
//!   ([`SubscriptionOptions::durable`]) is deleted with its pending messages when its last
//!   consumer detaches, or, if its process died, by the next attach of any consumer after its
//!   consumers' leases ran out.
//! - `seedwork_subscription_messages` — one row per message a subscription has not yet
//!   acknowledged: delivery count, the time before which it must not be redelivered
//!   (`visible_after`, the backoff after a nack), and the consumer holding it (`lease_owner`).
//!   Publishing inserts the log row and one such row per existing subscription of the topic in
//!   one transaction, so a subscription sees exactly the messages committed after it existed.
//! - `seedwork_consumers` — attached consumers, in attach order, each with a heartbeat lease.
//!   A consumer whose lease ran out (its process died) counts as gone: what it held is
//!   delivered again, and Failover/Exclusive/KeyShared assignments move on.
//!
//! # Delivery protocol
//!
//! A consumer claims its next message in one short transaction (`BEGIN IMMEDIATE` on SQLite;
//! on PostgreSQL the subscription row is locked `FOR NO KEY UPDATE`, which serialises claims
//! of one subscription across processes while claims of other subscriptions run in parallel):
//! it reads the live consumers and the head of the subscription in sequence order and takes the
//! first row that is
//!
//! - not held by a live consumer and past its `visible_after`,
//! - for a keyed message, not preceded by an earlier row of the same key that is held, backing
//!   off, or skipped (so a key's messages are processed one at a time, in publish order, even
//!   across nacks and consumer failures),
//! - for [`KeyShared`](SubscriptionKind::KeyShared), of a key that hashes to this consumer among
//!   the live consumers (a stable FNV-1a hash, the same in every process),
//! - for [`Failover`](SubscriptionKind::Failover) and
//!   [`Exclusive`](SubscriptionKind::Exclusive), only if this consumer is the earliest attached
//!   live one.
//!
//! The claim does not skip locked rows (`SKIP LOCKED`) as the outbox relay does: the per-key
//! rule must see every earlier row of a key, held or not, so one subscription's claims take
//! turns instead. Each is two indexed statements (besides PostgreSQL's lock and the
//! settlements it carries): one reads the head with the live consumers, one leases the chosen
//! rows and returns their messages. On SQLite, a claim with nothing to settle sends them with
//! `BEGIN IMMEDIATE` and `COMMIT` in the same two calls.
//!
//! A claim takes up to [`TransportSettings::prefetch`] rows that way (at most one per key),
//! increments each one's delivery count and writes the consumer as `lease_owner`; the consumer
//! hands them out one by one before it claims again. The delivery's `token` is the log
//! sequence. `ack` is applied in the consumer's next claim transaction (or when it is
//! dropped): it deletes the row if this consumer still holds that attempt, so under load one
//! transaction settles and takes many messages; a process that dies first leaves the message
//! to be delivered again, which at-least-once delivery allows.
//!
//! A consumer of a store's [`direct_transport`](crate::SqlStore::direct_transport) can do
//! better: it offers its acknowledgement to the unit of work that handles the message
//! ([`Consumer::transactional_ack`]; the bus's consume loop does this), whose transaction
//! deletes the rows itself. The message is then settled exactly when the handler's effects
//! commit, and no claim is needed to settle it. With nothing to settle, a consumer that has
//! no reason to expect work (its last claim took fewer than it may, and since it began
//! nothing was published to the topic, nor let go of in the subscription, in this process)
//! first looks at the head of its subscription with a read, outside any transaction, and
//! claims only if there is something to take: on SQLite an idle or caught-up consumer then
//! does not queue at the one writer, and on PostgreSQL it takes no lock.
//!
//! `nack` clears the owner and sets `visible_after` to now plus
//! [`RetryPolicy::backoff`](seedwork::messaging::RetryPolicy::backoff), or — at
//! `max_deliveries` — appends the message to the dead-letter topic with the
//! [`dead_letter`] properties and deletes the row, in one transaction. Settling a delivery this
//! consumer no longer holds is an [`Error::Broker`](seedwork::Error::Broker).
//!
//! # Layout
//!
//! This module holds the protocol (the delivery rule, settlement, heartbeats, wake-ups) and
//! [`SqlTransport`]. `backend.rs` runs its database operations, written once for every
//! [`Dialect`]: a dialect supplies only its statements (`TransportStatements`, in
//! `src/sqlite/sql.rs` and `src/postgres/sql.rs`, where PostgreSQL's subscription lock and
//! `NOTIFY` are plain SQL text) and, optionally, a listener for other processes' wake-ups
//! (PostgreSQL's is in `postgres.rs`). `sqlite.rs` and `postgres.rs` add the backend's name,
//! `open` and docs.
//!
//! # Guarantees
//!
//! At-least-once delivery: a message is gone from a subscription only when acknowledged or
//! dead-lettered. Attempt counts are stored, so they survive restarts. A dropped consumer
//! releases what it holds at once; a crashed one after its lease
//! ([`TransportSettings::consumer_lease`]). Consumers wake as soon as a publish commits in the
//! same process (and, on PostgreSQL, in any process, through `LISTEN/NOTIFY`); otherwise they
//! poll every [`TransportSettings::poll_interval`]. Timestamps come from each process's clock,
//! so processes sharing a PostgreSQL database should keep their clocks in sync.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use seedwork::messaging::{
    dead_letter, now_millis, Consumer, Delivery, Envelope, Message, Publisher, Subscriber,
    SubscriptionKind, SubscriptionOptions, SubscriptionRefused, TransactionalAck,
};
use seedwork::Result;

use crate::dialect::Dialect;
use backend::SqlBackend;
use group_commit::GroupCommit;

mod backend;
#[cfg(all(test, feature = "sqlite"))]
mod claim_tests;
pub(crate) mod direct;
mod group_commit;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// Tuning of a transport; the defaults suit most applications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportSettings {
    /// How often an idle consumer looks for work when nothing woke it (a publish in this
    /// process, or a notification from PostgreSQL, wakes it at once). Default 500 ms.
    pub poll_interval: Duration,
    /// How long a consumer counts as attached without a heartbeat; heartbeats are sent every
    /// third of it. When a consumer's process dies, its messages are redelivered and its role
    /// (Failover, Exclusive, KeyShared keys) moves on after this long. Default 15 s.
    pub consumer_lease: Duration,
    /// How many rows at the head of a subscription a claim looks at. Default 1000.
    pub scan_limit: u32,
    /// How many messages one claim takes for a consumer (at most one per key, so a key's
    /// order holds); the consumer hands them out one by one before it claims again. Each
    /// claim is a transaction, which also applies the consumer's acknowledgements since the
    /// last one (those a handler's transaction did not carry already: see the module docs),
    /// so under load one transaction settles and takes many messages. A claim that takes all
    /// it may is followed by another at once; after a shorter one the consumer may look
    /// first, with a read. Taken
    /// messages are leased to the consumer: another consumer of a Shared subscription gets
    /// them only if this one is dropped or dies. Default 32; 1 takes one at a time. Raise it
    /// (with [`ConsumeOptions::batch`](seedwork::application::ConsumeOptions::batch)) when one
    /// consumer must keep up with many writers: on SQLite each claim waits its turn among
    /// them, so the more it takes per turn the fewer turns it needs (the reference system
    /// uses 256).
    pub prefetch: u32,
}

impl Default for TransportSettings {
    fn default() -> Self {
        TransportSettings {
            poll_interval: Duration::from_millis(500),
            consumer_lease: Duration::from_secs(15),
            scan_limit: 1000,
            prefetch: 32,
        }
    }
}

/// The transport's own failures, carried as the source of [`seedwork::Error::Broker`] — or of
/// [`seedwork::Error::Unavailable`] when the database is unreachable, busy or restarting.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    #[error("the transport's database failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("exclusive subscription `{subscription}` on topic `{topic}` already has a consumer")]
    ExclusiveTaken { topic: String, subscription: String },
    #[error(transparent)]
    Refused(#[from] SubscriptionRefused),
    #[error(
        "subscription `{subscription}` on topic `{topic}` is {existing:?}; cannot attach a \
         {requested:?} consumer while it has consumers"
    )]
    KindMismatch {
        topic: String,
        subscription: String,
        existing: SubscriptionKind,
        requested: SubscriptionKind,
    },
    #[error(
        "delivery {token} (attempt {attempt}) of message {message_id} is not held by this \
         consumer (unknown, already acked or nacked, or its lease ran out)"
    )]
    NotInFlight {
        token: u64,
        attempt: u32,
        message_id: String,
    },
    #[error("the consumer lost its registration (no heartbeat within its lease)")]
    Lost,
    #[error(
        "the transaction carrying this publish was interrupted: the message may or may not \
         have been appended"
    )]
    Interrupted,
    #[error("the claim task ended abnormally")]
    Task(#[from] tokio::task::JoinError),
    #[error("message {message_id} could not be encoded")]
    Encode {
        message_id: String,
        #[source]
        source: serde_json::Error,
    },
}

impl From<TransportError> for seedwork::Error {
    fn from(error: TransportError) -> Self {
        match &error {
            TransportError::Database(source) if crate::error::is_transient(source) => {
                seedwork::Error::unavailable(error)
            }
            TransportError::Interrupted => seedwork::Error::unavailable(error),
            _ => seedwork::Error::broker(error),
        }
    }
}

/// Stored data that does not read back: a fault of the system, reported as a codec error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoredDataError {
    #[error("log row {sequence}: malformed {column}")]
    Json {
        sequence: i64,
        column: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("unknown subscription kind `{0}`")]
    Kind(String),
    #[error("log row {sequence}: {column} out of range")]
    Range { sequence: i64, column: &'static str },
}

impl From<StoredDataError> for seedwork::Error {
    fn from(error: StoredDataError) -> Self {
        seedwork::Error::Codec {
            type_name: "seedwork transport row".to_string(),
            source: Box::new(error),
        }
    }
}

/// Either failure of a backend operation.
#[derive(Debug)]
pub(crate) enum Failure {
    Transport(TransportError),
    Stored(StoredDataError),
}

impl From<TransportError> for Failure {
    fn from(error: TransportError) -> Self {
        Failure::Transport(error)
    }
}

impl From<StoredDataError> for Failure {
    fn from(error: StoredDataError) -> Self {
        Failure::Stored(error)
    }
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        Failure::Transport(TransportError::Database(error))
    }
}

impl From<Failure> for seedwork::Error {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Transport(error) => error.into(),
            Failure::Stored(error) => error.into(),
        }
    }
}

pub(crate) type Outcome<T> = std::result::Result<T, Failure>;

/// The name a subscription kind is stored under.
pub(crate) fn kind_name(kind: SubscriptionKind) -> &'static str {
    match kind {
        SubscriptionKind::Shared => "shared",
        SubscriptionKind::KeyShared => "key_shared",
        SubscriptionKind::Failover => "failover",
        SubscriptionKind::Exclusive => "exclusive",
    }
}

/// The subscription kind stored under `name`.
pub(crate) fn parse_kind(name: &str) -> std::result::Result<SubscriptionKind, StoredDataError> {
    match name {
        "shared" => Ok(SubscriptionKind::Shared),
        "key_shared" => Ok(SubscriptionKind::KeyShared),
        "failover" => Ok(SubscriptionKind::Failover),
        "exclusive" => Ok(SubscriptionKind::Exclusive),
        other => Err(StoredDataError::Kind(other.to_string())),
    }
}

/// Whether a consumer of kind `requested` may attach to a subscription stored as `existing`
/// with `live_consumers` attached; `Ok` means yes (and the subscription takes `requested`).
pub(crate) fn admit(
    options: &SubscriptionOptions,
    existing: SubscriptionKind,
    live_consumers: i64,
) -> std::result::Result<(), TransportError> {
    if live_consumers == 0 {
        Ok(())
    } else if existing == SubscriptionKind::Exclusive {
        Err(TransportError::ExclusiveTaken {
            topic: options.topic.clone(),
            subscription: options.subscription.clone(),
        })
    } else if existing != options.kind {
        Err(TransportError::KindMismatch {
            topic: options.topic.clone(),
            subscription: options.subscription.clone(),
            existing,
            requested: options.kind,
        })
    } else {
        Ok(())
    }
}

/// A message as it is stored in the log, JSON columns still as text.
pub(crate) struct StoredMessage {
    pub(crate) sequence: i64,
    pub(crate) topic: String,
    pub(crate) key: Option<String>,
    pub(crate) envelope: String,
    pub(crate) properties: String,
}

impl StoredMessage {
    pub(crate) fn decode(self) -> std::result::Result<Message, StoredDataError> {
        let sequence = self.sequence;
        let envelope: Envelope<serde_json::Value> =
            serde_json::from_str(&self.envelope).map_err(|source| StoredDataError::Json {
                sequence,
                column: "envelope",
                source,
            })?;
        let properties: BTreeMap<String, String> =
            serde_json::from_str(&self.properties).map_err(|source| StoredDataError::Json {
                sequence,
                column: "properties",
                source,
            })?;
        Ok(Message {
            topic: self.topic,
            key: self.key,
            envelope,
            properties,
        })
    }
}

/// A message ready to be appended: JSON columns encoded.
#[derive(Debug)]
pub(crate) struct EncodedMessage {
    pub(crate) topic: String,
    pub(crate) key: Option<String>,
    pub(crate) envelope: String,
    pub(crate) properties: String,
}

impl EncodedMessage {
    pub(crate) fn encode(message: &Message) -> std::result::Result<Self, TransportError> {
        let encode_error = |source| TransportError::Encode {
            message_id: message.envelope.id.clone(),
            source,
        };
        Ok(EncodedMessage {
            topic: message.topic.clone(),
            key: message.key.clone(),
            envelope: serde_json::to_string(&message.envelope).map_err(encode_error)?,
            properties: serde_json::to_string(&message.properties).map_err(encode_error)?,
        })
    }
}

/// The message a nack at `max_deliveries` sends to the dead-letter topic: the original, with
/// its topic replaced and the four [`dead_letter`] properties added.
pub(crate) fn dead_letter_of(
    mut message: Message,
    options: &SubscriptionOptions,
    deliveries: u32,
    reason: String,
) -> Message {
    let original_topic =
        std::mem::replace(&mut message.topic, options.effective_dead_letter_topic());
    let properties = &mut message.properties;
    properties.insert(dead_letter::ORIGINAL_TOPIC.to_string(), original_topic);
    properties.insert(
        dead_letter::SUBSCRIPTION.to_string(),
        options.subscription.clone(),
    );
    properties.insert(dead_letter::REASON.to_string(), reason);
    properties.insert(dead_letter::DELIVERIES.to_string(), deliveries.to_string());
    message
}

/// One row at the head of a subscription, as a claim sees it.
#[derive(Debug, Clone)]
pub(crate) struct HeadRow {
    pub(crate) sequence: i64,
    pub(crate) key: Option<String>,
    pub(crate) visible_after: i64,
    pub(crate) lease_owner: Option<i64>,
}

/// What a claim decided.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Deliver the row with this sequence.
    Take(i64),
    /// Nothing for this consumer now; look again when woken or, if set, at this time (ms).
    Wait(Option<i64>),
}

/// A stable 64-bit FNV-1a hash: the same in every process, unlike `std`'s hasher.
fn key_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The live consumer a key belongs to on a KeyShared subscription.
fn key_owner(key: &str, live: &[i64]) -> Option<i64> {
    let count = u64::try_from(live.len()).ok().filter(|n| *n > 0)?;
    let index = usize::try_from(key_hash(key) % count).ok()?;
    live.get(index).copied()
}

/// The delivery rule (see the module docs): which head row `me` takes, given the live consumers
/// in attach order and the head rows in sequence order.
#[cfg(test)]
pub(crate) fn choose(
    kind: SubscriptionKind,
    me: i64,
    live: &[i64],
    rows: &[HeadRow],
    now: i64,
) -> Choice {
    match choose_up_to(kind, me, live, rows, now, 1) {
        (taken, _) if !taken.is_empty() => Choice::Take(taken[0]),
        (_, wake_at) => Choice::Wait(wake_at),
    }
}

/// The rows `me` may take now, at most `max` of them and at most one per key, in sequence
/// order (see [`choose`] for the rule); and, when it may take none, when to look again.
pub(crate) fn choose_up_to(
    kind: SubscriptionKind,
    me: i64,
    live: &[i64],
    rows: &[HeadRow],
    now: i64,
    max: usize,
) -> (Vec<i64>, Option<i64>) {
    let mut taken = Vec::new();
    if !live.contains(&me) || max == 0 {
        return (taken, None);
    }
    let active = match kind {
        SubscriptionKind::Failover | SubscriptionKind::Exclusive => live.first() == Some(&me),
        SubscriptionKind::Shared | SubscriptionKind::KeyShared => true,
    };
    if !active {
        return (taken, None);
    }
    let mut blocked: HashSet<&str> = HashSet::new();
    let mut wake_at: Option<i64> = None;
    for row in rows {
        let key = row.key.as_deref();
        if key.is_some_and(|k| blocked.contains(k)) {
            continue;
        }
        let held = row.lease_owner.is_some_and(|owner| live.contains(&owner));
        let due = row.visible_after <= now;
        if !held && !due {
            wake_at = Some(wake_at.map_or(row.visible_after, |w| w.min(row.visible_after)));
        }
        let elsewhere = kind == SubscriptionKind::KeyShared
            && key.is_some_and(|k| key_owner(k, live) != Some(me));
        if !held && due && !elsewhere {
            taken.push(row.sequence);
            if taken.len() == max {
                break;
            }
        }
        // Taken or not, the key's later rows wait for this one.
        if let Some(key) = key {
            blocked.insert(key);
        }
    }
    (taken, wake_at)
}

/// A consumer's identity, as the backend needs it.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerRef {
    pub(crate) id: i64,
    pub(crate) subscription_id: i64,
    pub(crate) kind: SubscriptionKind,
}

/// A successful claim: the row and its message.
pub(crate) struct Claimed {
    pub(crate) sequence: i64,
    pub(crate) deliveries: i64,
    pub(crate) message: StoredMessage,
}

/// The database operations a transport needs; the protocol around them is backend-independent.
/// Implemented once, for every dialect, by [`SqlBackend`]; consumers hold it as a trait object
/// so that [`TransportConsumer`] is one type for both backends.
#[async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    /// Whether the database answers now.
    async fn check(&self) -> Outcome<()>;
    /// Appends to the log and to every subscription of the topic, in one transaction.
    /// Appends the messages, in order, to the log and to every subscription of their topics,
    /// in one transaction.
    async fn append(&self, messages: &[EncodedMessage], now: i64) -> Outcome<()>;
    /// Creates the subscription if needed and registers a consumer; returns (subscription id,
    /// consumer id).
    async fn attach(
        &self,
        options: &SubscriptionOptions,
        now: i64,
        lease_until: i64,
    ) -> Outcome<(i64, i64)>;
    /// In one transaction: applies `consumer`'s acknowledgements `acks` (row sequence,
    /// attempt), then claims up to `max` messages for it (at most one per key); when there are
    /// none, says when to look again (if it knows).
    async fn claim(
        &self,
        consumer: &ConsumerRef,
        acks: &[(i64, i64)],
        now: i64,
        scan_limit: i64,
        max: usize,
    ) -> Outcome<std::result::Result<Vec<Claimed>, Option<i64>>>;
    /// Whether a claim by `consumer` would take anything now, read without writing or
    /// locking: `Err` (with when to look again, if known) means it would not.
    async fn peek(
        &self,
        consumer: &ConsumerRef,
        now: i64,
        scan_limit: i64,
    ) -> Outcome<std::result::Result<(), Option<i64>>>;
    /// Releases the row for redelivery after `visible_after`; false if not held.
    async fn retry_later(
        &self,
        consumer: &ConsumerRef,
        sequence: i64,
        attempt: i64,
        visible_after: i64,
    ) -> Outcome<bool>;
    /// Removes the row and appends `dead` to its topic, in one transaction; false if not held.
    async fn dead_letter(
        &self,
        consumer: &ConsumerRef,
        sequence: i64,
        attempt: i64,
        dead: &EncodedMessage,
        now: i64,
    ) -> Outcome<bool>;
    /// Extends the consumer's lease; false if it had already run out or is gone.
    async fn heartbeat(&self, consumer: &ConsumerRef, now: i64, lease_until: i64) -> Outcome<bool>;
    /// Applies the consumer's last acknowledgements `acks`, unregisters it and releases what
    /// it still holds, in one transaction.
    async fn detach(&self, consumer: &ConsumerRef, acks: &[(i64, i64)]) -> Outcome<()>;
    /// Deletes log rows published before `cutoff` that no subscription still holds; returns
    /// how many.
    async fn purge(&self, cutoff: i64) -> Outcome<u64>;
    /// Deletes the subscription `name` of `topic` and what it holds, unless a consumer whose
    /// lease runs past `now` is attached ([`SubscriptionRefused::InUse`]); nothing when it does not
    /// exist. One transaction.
    async fn unsubscribe(&self, topic: &str, name: &str, now: i64) -> Outcome<()>;
    /// Starts forwarding wake-ups from other processes into `wakers`, if the backend can.
    fn listen(&self, wakers: Arc<Wakers>) -> Option<JoinHandle<()>>;
}

/// The wake-up signals of this process's consumers: one per topic, so that a publish wakes
/// only the consumers of its topic; and one per subscription, so that a settlement or a
/// detach, which can free messages only for the consumers of its own subscription, wakes no
/// one else. (Public only because [`Dialect::spawn_listener`] names it.)
#[doc(hidden)]
#[derive(Default)]
pub struct Wakers {
    by_topic: Mutex<HashMap<String, Arc<Signal>>>,
    by_subscription: Mutex<HashMap<(String, String), Arc<Signal>>>,
}

/// A wake-up signal that also counts how often it was given: a consumer that was busy when it
/// was given (not waiting, so not woken) still learns that something happened since it last
/// looked.
#[derive(Default)]
pub(crate) struct Signal {
    notify: Notify,
    given: AtomicU64,
}

impl Signal {
    /// Wakes the consumers waiting on it, and counts.
    pub(crate) fn give(&self) {
        self.given.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// How often it has been given so far.
    fn given(&self) -> u64 {
        self.given.load(Ordering::SeqCst)
    }
}

/// Locks a map of signals. A map is never left half-updated, so a poisoned lock still guards
/// valid data.
fn signals<K>(map: &Mutex<HashMap<K, Arc<Signal>>>) -> MutexGuard<'_, HashMap<K, Arc<Signal>>> {
    map.lock().unwrap_or_else(|e| e.into_inner())
}

impl Wakers {
    /// The signal of `topic`, created on first use.
    fn of(&self, topic: &str) -> Arc<Signal> {
        Arc::clone(
            signals(&self.by_topic)
                .entry(topic.to_string())
                .or_default(),
        )
    }

    /// The signal of the subscription `options` names, created on first use.
    fn of_subscription(&self, options: &SubscriptionOptions) -> Arc<Signal> {
        let key = (options.topic.clone(), options.subscription.clone());
        Arc::clone(signals(&self.by_subscription).entry(key).or_default())
    }

    /// Wakes the consumers of `topic` waiting in this process.
    pub(crate) fn wake(&self, topic: &str) {
        if let Some(signal) = signals(&self.by_topic).get(topic) {
            signal.give();
        }
    }

    /// Wakes every consumer waiting in this process.
    pub(crate) fn wake_all(&self) {
        for signal in signals(&self.by_topic).values() {
            signal.give();
        }
        for signal in signals(&self.by_subscription).values() {
            signal.give();
        }
    }
}

/// Aborts a background task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a transport and its consumers share.
struct Shared {
    backend: Box<dyn Backend>,
    appends: GroupCommit,
    wakers: Arc<Wakers>,
    settings: TransportSettings,
    listener: OnceLock<Option<AbortOnDrop>>,
}

/// The backend-independent half of a transport.
#[derive(Clone)]
pub(crate) struct Transport {
    shared: Arc<Shared>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

/// The durable transport on dialect `D`: a [`Publisher`] and [`Subscriber`] whose topics and
/// subscriptions live in the database (see the [module docs](self) for the tables, the
/// delivery protocol and its guarantees). Use it by its backend's name,
/// [`SqliteTransport`](crate::SqliteTransport) or
/// [`PostgresTransport`](crate::PostgresTransport), whose docs say what differs.
///
/// Build it on the pool of a migrated store, or with the backend's `open`. Clones share the
/// transport.
pub struct SqlTransport<D: Dialect> {
    core: Transport,
    dialect: PhantomData<fn() -> D>,
}

impl<D: Dialect> Clone for SqlTransport<D> {
    fn clone(&self) -> Self {
        SqlTransport {
            core: self.core.clone(),
            dialect: PhantomData,
        }
    }
}

impl<D: Dialect> fmt::Debug for SqlTransport<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlTransport")
            .field("core", &self.core)
            .finish()
    }
}

impl<D: Dialect> SqlTransport<D> {
    /// A transport on `pool`, which must be migrated (see the backend's `open`).
    pub fn new(pool: sqlx::Pool<D::Db>) -> Self {
        Self::with_settings(pool, TransportSettings::default())
    }

    /// A transport on `pool` with explicit settings.
    pub fn with_settings(pool: sqlx::Pool<D::Db>, settings: TransportSettings) -> Self {
        Self::from_core(Transport::on_pool::<D>(pool, settings))
    }

    pub(crate) fn from_core(core: Transport) -> Self {
        SqlTransport {
            core,
            dialect: PhantomData,
        }
    }

    /// Deletes messages published more than `older_than` ago from the topic log, except those
    /// a subscription has not yet acknowledged; returns how many went. Without it the log is
    /// kept for good: run it now and then (e.g. daily, keeping a few days for inspection).
    pub async fn purge_log(&self, older_than: Duration) -> Result<u64> {
        self.core.purge_log(older_than).await
    }
}

#[async_trait]
impl<D: Dialect> Publisher for SqlTransport<D> {
    async fn publish(&self, message: &Message) -> Result<()> {
        self.core.publish(message).await
    }

    /// Runs a trivial statement on the transport's database.
    async fn check(&self) -> Result<()> {
        Ok(self.core.shared.backend.check().await?)
    }
}

#[async_trait]
impl<D: Dialect> Subscriber for SqlTransport<D> {
    async fn subscribe(&self, options: SubscriptionOptions) -> Result<Box<dyn Consumer>> {
        Ok(Box::new(self.core.subscribe(options).await?))
    }

    /// Deletes the subscription's row, its pending messages and its expired registrations in
    /// one transaction; refused while a consumer's lease is running.
    async fn unsubscribe(&self, topic: &str, subscription: &str) -> Result<()> {
        self.core.unsubscribe(topic, subscription).await
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Transport {
    pub(crate) fn new(backend: Box<dyn Backend>, settings: TransportSettings) -> Self {
        Transport {
            shared: Arc::new(Shared {
                backend,
                appends: GroupCommit::default(),
                wakers: Arc::new(Wakers::default()),
                settings,
                listener: OnceLock::new(),
            }),
        }
    }

    /// The transport of dialect `D` on `pool`.
    pub(crate) fn on_pool<D: Dialect>(
        pool: sqlx::Pool<D::Db>,
        settings: TransportSettings,
    ) -> Self {
        Transport::new(Box::new(SqlBackend::<D>::new(pool)), settings)
    }

    /// Its settings.
    pub(crate) fn settings(&self) -> &TransportSettings {
        &self.shared.settings
    }

    pub(crate) async fn publish(&self, message: &Message) -> Result<()> {
        let encoded = EncodedMessage::encode(message)?;
        self.shared
            .appends
            .append(&*self.shared.backend, &self.shared.wakers, encoded)
            .await?;
        Ok(())
    }

    pub(crate) async fn purge_log(&self, older_than: Duration) -> Result<u64> {
        let cutoff = now_millis().saturating_sub(millis(older_than));
        Ok(self.shared.backend.purge(cutoff).await?)
    }

    pub(crate) async fn unsubscribe(&self, topic: &str, subscription: &str) -> Result<()> {
        Ok(self
            .shared
            .backend
            .unsubscribe(topic, subscription, now_millis())
            .await?)
    }

    pub(crate) async fn subscribe(
        &self,
        options: SubscriptionOptions,
    ) -> Result<TransportConsumer> {
        let shared = &self.shared;
        shared.listener.get_or_init(|| {
            shared
                .backend
                .listen(Arc::clone(&shared.wakers))
                .map(AbortOnDrop)
        });
        let now = now_millis();
        let lease = millis(shared.settings.consumer_lease);
        let (subscription_id, id) = shared
            .backend
            .attach(&options, now, now.saturating_add(lease))
            .await?;
        let consumer = ConsumerRef {
            id,
            subscription_id,
            kind: options.kind,
        };
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = tokio::spawn(heartbeat(
            Arc::clone(shared),
            consumer.clone(),
            Arc::clone(&lost),
        ));
        let wake = shared.wakers.of(&options.topic);
        let released = shared.wakers.of_subscription(&options);
        // A new consumer may change who gets what (KeyShared keys move).
        released.give();
        Ok(TransportConsumer {
            shared: Arc::clone(shared),
            consumer,
            options,
            wake,
            released,
            pending: None,
            prefetched: VecDeque::new(),
            in_hand: HashSet::new(),
            acks: Vec::new(),
            full_claim: false,
            seen: None,
            unsettled: VecDeque::new(),
            heartbeat: AbortOnDrop(heartbeat),
            lost,
        })
    }
}

/// Keeps a consumer's registration alive until it is dropped.
async fn heartbeat(shared: Arc<Shared>, consumer: ConsumerRef, lost: Arc<AtomicBool>) {
    let lease = shared.settings.consumer_lease;
    let every = (lease / 3).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(every).await;
        let now = now_millis();
        match shared
            .backend
            .heartbeat(&consumer, now, now.saturating_add(millis(lease)))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(consumer = consumer.id, "transport consumer lost its lease");
                lost.store(true, Ordering::SeqCst);
                shared.wakers.wake_all();
                return;
            }
            Err(error) => {
                tracing::warn!(consumer = consumer.id, ?error, "transport heartbeat failed");
            }
        }
    }
}

/// A claim running in the background: the acknowledgements it carries (given back, to be
/// carried again, when it failed) and what it found.
type ClaimTask = JoinHandle<(Vec<(i64, i64)>, ClaimOutcome)>;
type ClaimOutcome = Outcome<std::result::Result<Vec<Claimed>, Option<i64>>>;

/// A consumer of a [`SqliteTransport`](crate::SqliteTransport) or
/// [`PostgresTransport`](crate::PostgresTransport) subscription (what `subscribe` returns,
/// boxed).
///
/// It keeps its registration alive with a background heartbeat. Dropping it unregisters it:
/// the deliveries it has neither acked nor nacked become available to the other consumers at
/// once. [`receive`](Consumer::receive) is cancel-safe: a claim interrupted by cancellation
/// is finished in the background and handed out by the next `receive`.
pub struct TransportConsumer {
    shared: Arc<Shared>,
    consumer: ConsumerRef,
    options: SubscriptionOptions,
    /// Given by a publish to the topic.
    wake: Arc<Signal>,
    /// Given when a consumer of this subscription lets go of something that may hold back
    /// other messages (a keyed message settled, a consumer detached).
    released: Arc<Signal>,
    pending: Option<ClaimTask>,
    /// Claimed together with the delivery handed out last, not handed out yet.
    prefetched: VecDeque<Delivery>,
    /// Deliveries handed out and not settled yet (row sequence, attempt).
    in_hand: HashSet<(i64, i64)>,
    /// Acknowledgements not applied yet: they go with the next claim's transaction (or the
    /// detach when the consumer is dropped), and stay here while that fails.
    acks: Vec<(i64, i64)>,
    /// Whether the last claim took as many as it may (more are likely waiting).
    full_claim: bool,
    /// How often the topic's and the subscription's signals had been given when the last
    /// claim began (`None` before the first), the latter moved on by this consumer's own
    /// releases, which free nothing for it: if either differs now, there may be work.
    seen: Option<(u64, u64)>,
    /// Nacks and rejects the database did not take (a dropped connection, a busy database):
    /// the row stays leased to this live consumer, so nobody would deliver it again; they are
    /// retried, oldest first, before the next claim.
    unsettled: VecDeque<Unsettled>,
    heartbeat: AbortOnDrop,
    lost: Arc<AtomicBool>,
}

impl fmt::Debug for TransportConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportConsumer")
            .field("id", &self.consumer.id)
            .field("topic", &self.options.topic)
            .field("subscription", &self.options.subscription)
            .field("kind", &self.options.kind)
            .finish()
    }
}

impl TransportConsumer {
    /// Gives the subscription's signal: this consumer let go of something that may hold back
    /// messages for the others.
    fn release(&mut self) {
        self.released.give();
        if let Some((_, released)) = &mut self.seen {
            *released += 1;
        }
    }

    fn start_claim(&mut self) -> ClaimTask {
        let shared = Arc::clone(&self.shared);
        let consumer = self.consumer.clone();
        let acks = std::mem::take(&mut self.acks);
        // A claim is a write transaction even when it finds nothing; with nothing to settle,
        // look first (a read), unless there is reason to expect work: this is the first claim,
        // the last one took all it could, or a publish or a release happened since it began.
        let now_seen = (self.wake.given(), self.released.given());
        let signalled = self.seen.is_none_or(|seen| seen != now_seen);
        self.seen = Some(now_seen);
        let peek = acks.is_empty() && !self.full_claim && !signalled;
        tokio::spawn(async move {
            let settings = &shared.settings;
            let scan = i64::from(settings.scan_limit.max(1));
            let max = usize::try_from(settings.prefetch.max(1)).unwrap_or(1);
            if peek {
                match shared.backend.peek(&consumer, now_millis(), scan).await {
                    Ok(Ok(())) => {}
                    Ok(Err(wake_at)) => return (acks, Ok(Err(wake_at))),
                    Err(failure) => return (acks, Err(failure)),
                }
            }
            let found = shared
                .backend
                .claim(&consumer, &acks, now_millis(), scan, max)
                .await;
            (acks, found)
        })
    }

    /// Hands out `delivery`: from now on it may be settled.
    fn hand_out(&mut self, delivery: Delivery) -> Result<Delivery> {
        let (sequence, attempt) = Self::settled(&delivery)?;
        self.in_hand.insert((sequence, attempt));
        Ok(delivery)
    }

    /// Takes `delivery` out of the hand (it is being settled); an error if it is not there.
    fn take_from_hand(&mut self, delivery: &Delivery) -> Result<(i64, i64)> {
        let settled = Self::settled(delivery)?;
        if self.in_hand.remove(&settled) {
            Ok(settled)
        } else {
            Err(Self::not_in_flight(delivery).into())
        }
    }

    /// The row sequence and attempt a delivery refers to, if it can be one of ours.
    fn settled(delivery: &Delivery) -> std::result::Result<(i64, i64), TransportError> {
        let sequence = i64::try_from(delivery.token).map_err(|_| Self::not_in_flight(delivery))?;
        Ok((sequence, i64::from(delivery.attempt)))
    }

    fn not_in_flight(delivery: &Delivery) -> TransportError {
        TransportError::NotInFlight {
            token: delivery.token,
            attempt: delivery.attempt,
            message_id: delivery.message.envelope.id.clone(),
        }
    }
}

fn delivery_of(claimed: Claimed) -> std::result::Result<Delivery, StoredDataError> {
    let sequence = claimed.sequence;
    let token = u64::try_from(sequence).map_err(|_| StoredDataError::Range {
        sequence,
        column: "sequence",
    })?;
    let attempt = u32::try_from(claimed.deliveries).map_err(|_| StoredDataError::Range {
        sequence,
        column: "deliveries",
    })?;
    Ok(Delivery {
        message: claimed.message.decode()?,
        attempt,
        token,
    })
}

#[async_trait]
impl Consumer for TransportConsumer {
    async fn receive(&mut self) -> Result<Delivery> {
        // Still failing: the database is not back yet; the caller waits and comes again.
        self.settle_unsettled().await?;
        if let Some(delivery) = self.prefetched.pop_front() {
            return self.hand_out(delivery);
        }
        loop {
            if self.lost.load(Ordering::SeqCst) {
                return Err(TransportError::Lost.into());
            }
            let (wake, released) = (Arc::clone(&self.wake), Arc::clone(&self.released));
            let (notified, freed) = (wake.notify.notified(), released.notify.notified());
            tokio::pin!(notified, freed);
            notified.as_mut().enable();
            freed.as_mut().enable();
            if self.pending.is_none() {
                self.pending = Some(self.start_claim());
            }
            let Some(task) = self.pending.as_mut() else {
                continue;
            };
            let joined = task.await;
            self.pending = None;
            let (acks, found) = joined.map_err(TransportError::from)?;
            let found = match found {
                Ok(found) => found,
                Err(failure) => {
                    // Not applied: they go with the next claim.
                    self.acks.extend(acks);
                    return Err(failure.into());
                }
            };
            if !acks.is_empty() {
                // A later message of an acknowledged key may be waiting for another consumer.
                self.release();
            }
            match found {
                Ok(claimed) => {
                    self.full_claim = u32::try_from(claimed.len())
                        .is_ok_and(|taken| taken >= self.shared.settings.prefetch.max(1));
                    let mut deliveries = Vec::with_capacity(claimed.len());
                    for claimed in claimed {
                        deliveries.push(delivery_of(claimed)?);
                    }
                    self.prefetched.extend(deliveries);
                    if let Some(delivery) = self.prefetched.pop_front() {
                        return self.hand_out(delivery);
                    }
                }
                Err(wake_at) => {
                    let poll = self.shared.settings.poll_interval;
                    let pause = wake_at.map_or(poll, |at| {
                        let until = at.saturating_sub(now_millis()).max(1);
                        poll.min(Duration::from_millis(u64::try_from(until).unwrap_or(1)))
                    });
                    self.full_claim = false;
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = &mut freed => {}
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
    }

    /// The next delivery the last claim took, if any: no database round trip.
    fn ready(&mut self) -> Option<Delivery> {
        let delivery = self.prefetched.pop_front()?;
        self.hand_out(delivery).ok()
    }

    /// The acknowledgement of `deliveries` for a unit of work on the store whose
    /// [`direct_transport`](crate::SqlStore::direct_transport) this consumer's transport is:
    /// its transaction deletes their rows, so they are settled when the handler's effects
    /// commit. A transaction of any other store declines it, and the bus acknowledges the
    /// usual way. `None` if a delivery is not in hand.
    fn transactional_ack(&self, deliveries: &[&Delivery]) -> Option<TransactionalAck> {
        let mut acks = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let settled = Self::settled(delivery).ok()?;
            if !self.in_hand.contains(&settled) {
                return None;
            }
            acks.push(settled);
        }
        Some(TransactionalAck::new(direct::CarriedAcks {
            transport: Arc::downgrade(&self.shared),
            consumer: self.consumer.clone(),
            acks,
        }))
    }

    /// Lets go of a delivery whose acknowledgement a committed transaction carried: nothing
    /// is written.
    async fn ack_committed(&mut self, delivery: &Delivery) -> Result<()> {
        self.take_from_hand(delivery)?;
        if delivery.message.key.is_some() {
            // A later message of the key may be waiting for another consumer.
            self.release();
        }
        Ok(())
    }

    /// Takes the acknowledgement; it is applied in the transaction of this consumer's next
    /// claim (its next [`receive`](Consumer::receive)), or when the consumer is dropped. A
    /// process that dies before then leaves the message to be delivered again, which
    /// at-least-once delivery allows (the inbox absorbs it).
    async fn ack(&mut self, delivery: &Delivery) -> Result<()> {
        let settled = self.take_from_hand(delivery)?;
        self.acks.push(settled);
        Ok(())
    }

    async fn nack(&mut self, delivery: &Delivery) -> Result<()> {
        let retry = self.options.retry.clone();
        if delivery.attempt >= retry.max_deliveries.max(1) {
            let reason = format!("nacked {} times", delivery.attempt);
            return self.dead_letter(delivery, reason).await;
        }
        let (sequence, attempt) = self.take_from_hand(delivery)?;
        // One millisecond more: the redelivery must not come before the full backoff,
        // whatever the rounding of the millisecond clock.
        let backoff = millis(retry.backoff(delivery.attempt)).saturating_add(1);
        let visible_after = now_millis().saturating_add(backoff);
        let held = self
            .settle(Unsettled {
                sequence,
                attempt,
                settlement: Settlement::RetryLater { visible_after },
            })
            .await?;
        if !held {
            return Err(Self::not_in_flight(delivery).into());
        }
        Ok(())
    }

    async fn reject(&mut self, delivery: &Delivery, reason: &str) -> Result<()> {
        self.dead_letter(delivery, reason.to_string()).await
    }

    fn options(&self) -> &SubscriptionOptions {
        &self.options
    }
}

impl TransportConsumer {
    /// Settles the delivery by appending it to the dead-letter topic, in one transaction.
    async fn dead_letter(&mut self, delivery: &Delivery, reason: String) -> Result<()> {
        let (sequence, attempt) = self.take_from_hand(delivery)?;
        let dead = dead_letter_of(
            delivery.message.clone(),
            &self.options,
            delivery.attempt,
            reason,
        );
        // Encodable now, so a retried settlement cannot fail on encoding.
        EncodedMessage::encode(&dead)?;
        let held = self
            .settle(Unsettled {
                sequence,
                attempt,
                settlement: Settlement::DeadLetter(Box::new(dead)),
            })
            .await?;
        if !held {
            return Err(Self::not_in_flight(delivery).into());
        }
        Ok(())
    }
}

/// A settlement of one delivery (the row `sequence`, delivered for the `attempt`th time).
#[derive(Debug)]
struct Unsettled {
    sequence: i64,
    attempt: i64,
    settlement: Settlement,
}

#[derive(Debug)]
enum Settlement {
    RetryLater { visible_after: i64 },
    DeadLetter(Box<Message>),
}

impl TransportConsumer {
    /// Applies a settlement; when the database does not take it, keeps it for
    /// [`settle_unsettled`](Self::settle_unsettled) and returns the failure. `Ok(false)`:
    /// the row is no longer this consumer's to settle.
    async fn settle(&mut self, unsettled: Unsettled) -> Result<bool> {
        match self.apply(&unsettled).await {
            Ok(held) => {
                // A later message of the same key may be waiting for this one.
                self.release();
                Ok(held)
            }
            Err(failure) => {
                self.unsettled.push_back(unsettled);
                Err(failure)
            }
        }
    }

    /// Retries the settlements the database did not take, oldest first; stops at the first
    /// that fails again.
    async fn settle_unsettled(&mut self) -> Result<()> {
        while let Some(unsettled) = self.unsettled.front() {
            // Whether the row was still held no longer matters: either way it is settled or
            // someone else's now.
            self.apply(unsettled).await?;
            self.unsettled.pop_front();
            self.release();
        }
        Ok(())
    }

    async fn apply(&self, unsettled: &Unsettled) -> Result<bool> {
        let Unsettled {
            sequence,
            attempt,
            settlement,
        } = unsettled;
        let backend = &self.shared.backend;
        let held = match settlement {
            Settlement::RetryLater { visible_after } => {
                backend
                    .retry_later(&self.consumer, *sequence, *attempt, *visible_after)
                    .await?
            }
            Settlement::DeadLetter(dead) => {
                let encoded = EncodedMessage::encode(dead)?;
                let held = backend
                    .dead_letter(&self.consumer, *sequence, *attempt, &encoded, now_millis())
                    .await?;
                self.shared.wakers.wake(&dead.topic);
                held
            }
        };
        Ok(held)
    }
}

impl Drop for TransportConsumer {
    fn drop(&mut self) {
        self.heartbeat.0.abort();
        let pending = self.pending.take();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to release on: the lease runs out instead.
            return;
        };
        let shared = Arc::clone(&self.shared);
        let consumer = self.consumer.clone();
        let released = Arc::clone(&self.released);
        let mut acks = std::mem::take(&mut self.acks);
        runtime.spawn(async move {
            // Let an interrupted claim finish first, so what it took is released too (and
            // the acknowledgements it carried are applied, or carried again here).
            if let Some(task) = pending {
                if let Ok((carried, Err(_))) = task.await {
                    acks.extend(carried);
                }
            }
            if let Err(error) = shared.backend.detach(&consumer, &acks).await {
                tracing::warn!(consumer = consumer.id, ?error, "transport detach failed");
            }
            // What it held goes to the subscription's other consumers.
            released.give();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sequence: i64, key: Option<&str>, visible_after: i64, owner: Option<i64>) -> HeadRow {
        HeadRow {
            sequence,
            key: key.map(str::to_string),
            visible_after,
            lease_owner: owner,
        }
    }

    #[test]
    fn a_key_backing_off_holds_back_its_later_messages_only() {
        let rows = [
            row(1, Some("a"), 500, None),
            row(2, Some("a"), 0, None),
            row(3, Some("b"), 0, None),
        ];
        let choice = choose(SubscriptionKind::Shared, 7, &[7], &rows, 100);
        assert_eq!(choice, Choice::Take(3));
        let only_a = &rows[..2];
        assert_eq!(
            choose(SubscriptionKind::Shared, 7, &[7], only_a, 100),
            Choice::Wait(Some(500))
        );
    }

    #[test]
    fn a_claim_takes_up_to_its_limit_and_one_row_per_key() {
        let rows = [
            row(1, Some("a"), 0, None),
            row(2, Some("a"), 0, None),
            row(3, None, 0, None),
            row(4, Some("b"), 0, Some(9)),
            row(5, Some("b"), 0, None),
            row(6, Some("c"), 0, None),
            row(7, None, 0, None),
        ];
        let shared = SubscriptionKind::Shared;
        // 2 waits behind 1 (same key), 5 behind 4 (held by live consumer 9).
        assert_eq!(
            choose_up_to(shared, 7, &[7, 9], &rows, 0, 10),
            (vec![1, 3, 6, 7], None)
        );
        assert_eq!(
            choose_up_to(shared, 7, &[7, 9], &rows, 0, 2),
            (vec![1, 3], None)
        );
        assert_eq!(
            choose_up_to(shared, 7, &[7, 9], &rows, 0, 0),
            (vec![], None)
        );
    }

    #[test]
    fn a_lease_of_a_dead_consumer_does_not_hold() {
        let rows = [row(1, None, 0, Some(3))];
        assert_eq!(
            choose(SubscriptionKind::Shared, 7, &[7], &rows, 0),
            Choice::Take(1)
        );
        assert_eq!(
            choose(SubscriptionKind::Shared, 7, &[3, 7], &rows, 0),
            Choice::Wait(None)
        );
    }

    #[test]
    fn failover_serves_only_the_earliest_live_consumer() {
        let rows = [row(1, None, 0, None)];
        assert_eq!(
            choose(SubscriptionKind::Failover, 8, &[4, 8], &rows, 0),
            Choice::Wait(None)
        );
        assert_eq!(
            choose(SubscriptionKind::Failover, 4, &[4, 8], &rows, 0),
            Choice::Take(1)
        );
    }

    #[test]
    fn key_shared_gives_every_key_to_exactly_one_live_consumer() {
        let live = [2, 5, 9];
        for n in 0..50 {
            let key = format!("key-{n}");
            let rows = [row(1, Some(&key), 0, None)];
            let takers: Vec<i64> = live
                .iter()
                .copied()
                .filter(|me| {
                    choose(SubscriptionKind::KeyShared, *me, &live, &rows, 0) == Choice::Take(1)
                })
                .collect();
            assert_eq!(takers.len(), 1, "{key}: {takers:?}");
        }
    }

    #[test]
    fn an_unreachable_database_is_unavailable_and_a_refusal_is_a_broker_error() {
        let lost = seedwork::Error::from(TransportError::Database(sqlx::Error::PoolTimedOut));
        assert!(lost.is_transient(), "{lost:?}");
        let taken = seedwork::Error::from(TransportError::ExclusiveTaken {
            topic: "t".into(),
            subscription: "s".into(),
        });
        assert!(matches!(taken, seedwork::Error::Broker(_)), "{taken:?}");
    }

    #[test]
    fn the_dead_letter_carries_all_four_properties() {
        let message = Message {
            topic: "orders".into(),
            key: None,
            envelope: Envelope::new("T", "v1", "svc", serde_json::json!({})),
            properties: BTreeMap::from([("x".to_string(), "y".to_string())]),
        };
        let options = SubscriptionOptions::new("orders", "billing");
        let dead = dead_letter_of(message, &options, 5, "nacked 5 times".into());
        assert_eq!(dead.topic, "orders-billing-DLQ");
        assert_eq!(dead.properties.len(), 5);
        assert_eq!(dead.properties[dead_letter::DELIVERIES], "5");
        assert_eq!(dead.properties[dead_letter::ORIGINAL_TOPIC], "orders");
    }
}
