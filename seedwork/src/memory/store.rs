use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{Mutex, Notify, OwnedMutexGuard};

use crate::error::{Error, Result};
use crate::messaging::{
    now_millis, InboxStore, Message, OutboxEntry, OutboxLag, OutboxStore, ParkedEntry,
    PublishFailure,
};
use crate::uow::{Transaction, TransactionalStore};

/// A stored value with its version.
#[derive(Clone)]
pub(crate) struct Row {
    pub(crate) version: u64,
    pub(crate) value: Arc<dyn Any + Send + Sync>,
}

struct OutboxRow {
    message: Message,
    committed_at: Instant,
    lease: Option<(String, Instant)>,
    published_at: Option<Instant>,
    /// Failed publishes (outages not counted).
    attempts: u32,
    last_error: Option<String>,
    /// When the relay gave up on it (milliseconds since the epoch).
    parked_at: Option<i64>,
}

impl OutboxRow {
    fn held_by(&self, claimant: &str) -> bool {
        matches!(&self.lease, Some((holder, _)) if holder == claimant)
    }

    fn is_parked(&self) -> bool {
        self.parked_at.is_some() && self.published_at.is_none()
    }
}

#[derive(Default)]
struct Data {
    tables: HashMap<&'static str, BTreeMap<String, Row>>,
    outbox: BTreeMap<u64, OutboxRow>,
    next_sequence: u64,
    /// Processed message ids per consumer, with when they were recorded.
    inbox: HashMap<(String, String), Instant>,
}

struct Shared {
    committed: RwLock<Data>,
    writer: Arc<Mutex<()>>,
    signal: Arc<Notify>,
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, Data> {
        // A poisoned lock means a panic elsewhere; the data itself is still consistent because
        // every write applies whole, so keep serving it.
        self.committed.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Data> {
        self.committed.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// An in-memory transactional store: tables of versioned values, an outbox and an inbox.
///
/// Transactions are serialised (one writer at a time, like SQLite's `BEGIN IMMEDIATE`); reads
/// outside a transaction see committed state and never wait for a writer. A transaction stages
/// its writes and applies them all at once on commit, so a reader never sees half of one.
/// Because a unit of work holds the writer lock until it ends, code inside a command handler
/// must not open a second unit of work on the same store (e.g. by dispatching another command):
/// it would wait for the first forever. Clones share the same data.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = self.shared.read();
        f.debug_struct("MemoryStore")
            .field("tables", &data.tables.len())
            .field("outbox", &data.outbox.len())
            .field("inbox", &data.inbox.len())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

/// One outbox entry as seen by [`MemoryStore::outbox_snapshot`].
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxSnapshot {
    /// Its sequence.
    pub sequence: u64,
    /// The message.
    pub message: Message,
    /// Whether a relay marked it published.
    pub published: bool,
    /// Whether the relay parked it (see [`OutboxStore::parked`]).
    pub parked: bool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore {
            shared: Arc::new(Shared {
                committed: RwLock::new(Data::default()),
                writer: Arc::new(Mutex::new(())),
                signal: Arc::new(Notify::new()),
            }),
        }
    }

    /// The committed row `key` of `table`.
    pub(crate) fn row(&self, table: &'static str, key: &str) -> Option<Row> {
        self.shared
            .read()
            .tables
            .get(table)
            .and_then(|rows| rows.get(key))
            .cloned()
    }

    /// Up to `limit` committed rows of `table` whose key comes after `after`, in key order.
    pub(crate) fn rows_after(
        &self,
        table: &'static str,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<Row> {
        let shared = self.shared.read();
        let Some(rows) = shared.tables.get(table) else {
            return Vec::new();
        };
        let start = match after {
            Some(key) => Bound::Excluded(key),
            None => Bound::Unbounded,
        };
        rows.range::<str, _>((start, Bound::Unbounded))
            .take(limit)
            .map(|(_, row)| row.clone())
            .collect()
    }

    /// Every outbox entry still kept, in sequence order (for tests and diagnostics).
    pub fn outbox_snapshot(&self) -> Vec<OutboxSnapshot> {
        self.shared
            .read()
            .outbox
            .iter()
            .map(|(sequence, row)| OutboxSnapshot {
                sequence: *sequence,
                message: row.message.clone(),
                published: row.published_at.is_some(),
                parked: row.is_parked(),
            })
            .collect()
    }

    /// Whether the inbox of `consumer` holds `message_id`.
    pub fn inbox_contains(&self, consumer: &str, message_id: &str) -> bool {
        self.shared
            .read()
            .inbox
            .contains_key(&(consumer.to_string(), message_id.to_string()))
    }
}

#[async_trait]
impl TransactionalStore for MemoryStore {
    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        let writer = Arc::clone(&self.shared.writer).lock_owned().await;
        Ok(Box::new(MemoryTransaction {
            _writer: writer,
            shared: Arc::clone(&self.shared),
            staged: Vec::new(),
            savepoints: Vec::new(),
        }))
    }
}

enum Op {
    Put {
        table: &'static str,
        key: String,
        row: Row,
    },
    Delete {
        table: &'static str,
        key: String,
    },
    Outbox(Vec<Message>),
    Inbox(String, String),
}

/// A transaction on a [`MemoryStore`]. Repositories for the memory backend reach it with
/// [`UnitOfWork::transaction`](crate::uow::UnitOfWork::transaction).
pub struct MemoryTransaction {
    _writer: OwnedMutexGuard<()>,
    shared: Arc<Shared>,
    staged: Vec<Op>,
    savepoints: Vec<(String, usize)>,
}

impl fmt::Debug for MemoryTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTransaction")
            .field("staged", &self.staged.len())
            .field("savepoints", &self.savepoints)
            .finish()
    }
}

impl MemoryTransaction {
    /// Row `key` of `table` as this transaction sees it (its own writes included).
    pub(crate) fn row(&self, table: &'static str, key: &str) -> Option<Row> {
        for op in self.staged.iter().rev() {
            match op {
                Op::Put {
                    table: t,
                    key: k,
                    row,
                } if *t == table && k == key => return Some(row.clone()),
                Op::Delete { table: t, key: k } if *t == table && k == key => return None,
                _ => {}
            }
        }
        self.shared
            .read()
            .tables
            .get(table)
            .and_then(|rows| rows.get(key))
            .cloned()
    }

    /// Stages a write of `key` in `table` at `new_version`, if the current version is
    /// `expected` (0 = must not exist). Returns the current version on mismatch.
    pub(crate) fn put_checked(
        &mut self,
        table: &'static str,
        key: &str,
        expected: u64,
        new_version: u64,
        value: Arc<dyn Any + Send + Sync>,
    ) -> std::result::Result<(), u64> {
        let current = self.row(table, key).map(|row| row.version).unwrap_or(0);
        if current != expected {
            return Err(current);
        }
        self.staged.push(Op::Put {
            table,
            key: key.to_string(),
            row: Row {
                version: new_version,
                value,
            },
        });
        Ok(())
    }

    /// Stages a delete; `false` if there is no such row.
    pub(crate) fn delete(&mut self, table: &'static str, key: &str) -> bool {
        if self.row(table, key).is_none() {
            return false;
        }
        self.staged.push(Op::Delete {
            table,
            key: key.to_string(),
        });
        true
    }

    fn inbox_has(&self, consumer: &str, message_id: &str) -> bool {
        self.staged
            .iter()
            .any(|op| matches!(op, Op::Inbox(c, m) if c == consumer && m == message_id))
            || self
                .shared
                .read()
                .inbox
                .contains_key(&(consumer.to_string(), message_id.to_string()))
    }
}

#[async_trait]
impl Transaction for MemoryTransaction {
    async fn savepoint(&mut self, name: &str) -> Result<()> {
        self.savepoints.push((name.to_string(), self.staged.len()));
        Ok(())
    }

    async fn rollback_to_savepoint(&mut self, name: &str) -> Result<()> {
        let position = self
            .savepoints
            .iter()
            .rposition(|(n, _)| n == name)
            .ok_or_else(|| Error::UnitOfWork(format!("no savepoint named `{name}`")))?;
        let staged_then = self.savepoints[position].1;
        self.staged.truncate(staged_then);
        self.savepoints.truncate(position + 1);
        Ok(())
    }

    async fn append_outbox(&mut self, messages: Vec<Message>) -> Result<()> {
        self.staged.push(Op::Outbox(messages));
        Ok(())
    }

    async fn record_inbox(&mut self, consumer: &str, message_id: &str) -> Result<bool> {
        if self.inbox_has(consumer, message_id) {
            return Ok(false);
        }
        self.staged
            .push(Op::Inbox(consumer.to_string(), message_id.to_string()));
        Ok(true)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let mut wrote_outbox = false;
        let now = Instant::now();
        {
            let mut data = self.shared.write();
            for op in self.staged {
                match op {
                    Op::Put { table, key, row } => {
                        data.tables.entry(table).or_default().insert(key, row);
                    }
                    Op::Delete { table, key } => {
                        if let Some(rows) = data.tables.get_mut(table) {
                            rows.remove(&key);
                        }
                    }
                    Op::Outbox(messages) => {
                        wrote_outbox |= !messages.is_empty();
                        for message in messages {
                            data.next_sequence += 1;
                            let sequence = data.next_sequence;
                            data.outbox.insert(
                                sequence,
                                OutboxRow {
                                    message,
                                    committed_at: now,
                                    lease: None,
                                    published_at: None,
                                    attempts: 0,
                                    last_error: None,
                                    parked_at: None,
                                },
                            );
                        }
                    }
                    Op::Inbox(consumer, message_id) => {
                        data.inbox.insert((consumer, message_id), now);
                    }
                }
            }
        }
        if wrote_outbox {
            self.shared.signal.notify_one();
        }
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        Ok(())
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[async_trait]
impl OutboxStore for MemoryStore {
    async fn claim(
        &self,
        claimant: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>> {
        let now = Instant::now();
        let mut data = self.shared.write();
        let mut blocked: HashSet<Option<String>> = HashSet::new();
        let mut claimed = Vec::new();
        for (sequence, row) in data.outbox.iter_mut() {
            if row.published_at.is_some() {
                continue;
            }
            if claimed.len() >= limit {
                break;
            }
            let key = row.message.key.clone();
            let keyed = key.is_some();
            if keyed && blocked.contains(&key) {
                continue;
            }
            if row.parked_at.is_some() {
                // Parked: skipped, and its key's later entries wait behind it.
                if keyed {
                    blocked.insert(key);
                }
                continue;
            }
            let held_by_other = matches!(
                &row.lease,
                Some((holder, expires)) if holder != claimant && *expires > now
            );
            if held_by_other {
                if keyed {
                    blocked.insert(key);
                }
                continue;
            }
            row.lease = Some((claimant.to_string(), now + lease));
            claimed.push(OutboxEntry {
                sequence: *sequence,
                message: row.message.clone(),
            });
        }
        Ok(claimed)
    }

    async fn mark_published(&self, claimant: &str, sequences: &[u64]) -> Result<()> {
        let now = Instant::now();
        let mut data = self.shared.write();
        for sequence in sequences {
            if let Some(row) = data.outbox.get_mut(sequence) {
                if row.held_by(claimant) && row.published_at.is_none() {
                    row.lease = None;
                    row.published_at = Some(now);
                }
            }
        }
        Ok(())
    }

    async fn release(&self, claimant: &str, sequences: &[u64]) -> Result<()> {
        let mut data = self.shared.write();
        for sequence in sequences {
            if let Some(row) = data.outbox.get_mut(sequence) {
                if row.held_by(claimant) {
                    row.lease = None;
                }
            }
        }
        Ok(())
    }

    async fn renew(&self, claimant: &str, sequences: &[u64], lease: Duration) -> Result<u64> {
        let until = Instant::now() + lease;
        let mut data = self.shared.write();
        let mut renewed = 0;
        for sequence in sequences {
            if let Some(row) = data.outbox.get_mut(sequence) {
                if row.held_by(claimant) && row.published_at.is_none() {
                    row.lease = Some((claimant.to_string(), until));
                    renewed += 1;
                }
            }
        }
        Ok(renewed)
    }

    async fn record_failures(
        &self,
        claimant: &str,
        failures: &[PublishFailure],
        max_attempts: u32,
    ) -> Result<Vec<u64>> {
        let now = now_millis();
        let mut data = self.shared.write();
        let mut parked = Vec::new();
        for failure in failures {
            let Some(row) = data.outbox.get_mut(&failure.sequence) else {
                continue;
            };
            if !row.held_by(claimant) || row.published_at.is_some() || row.parked_at.is_some() {
                continue;
            }
            row.lease = None;
            row.attempts = row.attempts.saturating_add(1);
            row.last_error = Some(failure.error.clone());
            if row.attempts >= max_attempts {
                row.parked_at = Some(now);
                parked.push(failure.sequence);
            }
        }
        Ok(parked)
    }

    async fn parked(&self, after: Option<u64>, limit: usize) -> Result<Vec<ParkedEntry>> {
        let data = self.shared.read();
        let start = match after {
            Some(sequence) => Bound::Excluded(sequence),
            None => Bound::Unbounded,
        };
        Ok(data
            .outbox
            .range((start, Bound::Unbounded))
            .filter_map(|(sequence, row)| {
                let parked_at = row.parked_at.filter(|_| row.published_at.is_none())?;
                Some(ParkedEntry {
                    sequence: *sequence,
                    topic: row.message.topic.clone(),
                    key: row.message.key.clone(),
                    message: Some(row.message.clone()),
                    attempts: row.attempts,
                    last_error: row.last_error.clone().unwrap_or_default(),
                    parked_at,
                })
            })
            .take(limit)
            .collect())
    }

    async fn redrive(&self, sequence: u64) -> Result<()> {
        {
            let mut data = self.shared.write();
            match data.outbox.get_mut(&sequence) {
                Some(row) if row.is_parked() => {
                    row.parked_at = None;
                    row.attempts = 0;
                    row.last_error = None;
                    row.lease = None;
                }
                _ => return Err(Error::not_found("parked outbox entry", sequence)),
            }
        }
        self.shared.signal.notify_one();
        Ok(())
    }

    async fn discard(&self, sequence: u64) -> Result<()> {
        {
            let mut data = self.shared.write();
            if !data.outbox.get(&sequence).is_some_and(OutboxRow::is_parked) {
                return Err(Error::not_found("parked outbox entry", sequence));
            }
            data.outbox.remove(&sequence);
        }
        // The key's later entries are free to go.
        self.shared.signal.notify_one();
        Ok(())
    }

    async fn lag(&self) -> Result<OutboxLag> {
        let now = Instant::now();
        let data = self.shared.read();
        let mut lag = OutboxLag::default();
        for row in data.outbox.values().filter(|r| r.published_at.is_none()) {
            if row.parked_at.is_some() {
                lag.parked += 1;
            } else {
                lag.pending += 1;
                if lag.oldest_pending_age.is_none() {
                    // Sequence order is commit order: the first one is the oldest.
                    lag.oldest_pending_age = Some(now.saturating_duration_since(row.committed_at));
                }
            }
        }
        Ok(lag)
    }

    async fn purge_published(&self, older_than: Duration) -> Result<u64> {
        let now = Instant::now();
        let mut data = self.shared.write();
        let before = data.outbox.len();
        data.outbox.retain(|_, row| match row.published_at {
            Some(at) => now.duration_since(at) < older_than,
            None => true,
        });
        Ok((before - data.outbox.len()) as u64)
    }

    async fn pending(&self) -> Result<u64> {
        let data = self.shared.read();
        Ok(data
            .outbox
            .values()
            .filter(|row| row.published_at.is_none())
            .count() as u64)
    }

    fn commit_signal(&self) -> Option<Arc<Notify>> {
        Some(Arc::clone(&self.shared.signal))
    }
}

#[async_trait]
impl InboxStore for MemoryStore {
    async fn purge_inbox(&self, older_than: Duration) -> Result<u64> {
        let now = Instant::now();
        let mut data = self.shared.write();
        let before = data.inbox.len();
        data.inbox
            .retain(|_, recorded| now.saturating_duration_since(*recorded) < older_than);
        Ok((before - data.inbox.len()) as u64)
    }
}
