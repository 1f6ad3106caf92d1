//! One writer at a time per database file, queued inside the process.
//!
//! SQLite lets one transaction write at a time, and every transaction here opens with
//! `BEGIN IMMEDIATE`. When several connections of one pool race for that lock, the losers do
//! not queue: SQLite's busy handler puts each to sleep and retries, with sleeps growing from
//! 1 ms to 100 ms. Under load most of a writer's time goes to those sleeps, the lock sits
//! idle between a commit and the next sleeper's wake-up, and the unlucky writer waits the
//! longest — throughput falls and the latency tail grows with every added connection.
//!
//! The gate makes the writers of one process take turns before they begin, so the next one
//! starts the moment the previous one commits and nobody sleeps. The lock itself is still
//! SQLite's: other processes on the same file still meet the busy handler, and nothing here is
//! needed for correctness. Every pool and transport on one file share its gate (the registry
//! is keyed by the file's path), because they share its lock.
//!
//! Turns are FIFO within each [`Priority`]; a waiting [`Priority::Backlog`] writer (a message
//! handler, a transport claim or settlement, a relay) goes before waiting
//! [`Priority::Request`] writers, but at most [`BACKLOG_STREAK`] backlog turns in a row pass a
//! waiting request, so requests are never starved. Without it, under overload the consumers'
//! few transactions queue behind every new request and the backlog of accepted work grows
//! without bound; with it, draining comes first and new requests wait a little longer.
//!
//! A writer that cannot get its turn within [`WAIT`] (as long as the busy timeout the stores
//! set) fails with `PoolTimedOut`, a transient error, as a busy database would.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use seedwork::uow::Priority;
use tokio::sync::oneshot;

/// How long a writer waits for its turn before giving up.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// How many backlog turns in a row may pass a waiting request.
pub(crate) const BACKLOG_STREAK: u32 = 4;

/// The gate of one database (or none: PostgreSQL locks rows, not the database).
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct WriterGate(Option<Arc<Queue>>);

/// The turn and the writers waiting for it.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Queue {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Whether some writer holds the turn.
    busy: bool,
    requests: VecDeque<oneshot::Sender<Turn>>,
    backlog: VecDeque<oneshot::Sender<Turn>>,
    /// Backlog turns given in a row while a request waited.
    streak: u32,
}

impl State {
    /// The next waiter by the rule in the module docs.
    fn next(&mut self) -> Option<oneshot::Sender<Turn>> {
        let backlog_first =
            !self.backlog.is_empty() && (self.requests.is_empty() || self.streak < BACKLOG_STREAK);
        if backlog_first {
            self.streak = if self.requests.is_empty() {
                0
            } else {
                self.streak + 1
            };
            self.backlog.pop_front()
        } else {
            self.streak = 0;
            self.requests.pop_front()
        }
    }
}

/// A writer's turn, held until dropped (with the transaction it guards); dropping it hands
/// the turn to the next waiter.
#[derive(Debug)]
pub(crate) struct Turn(Option<Arc<Queue>>);

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(queue) = self.0.take() {
            queue.pass_on();
        }
    }
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state whole, so a poisoned lock still guards valid data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives the turn to the next waiter still waiting, or frees it.
    fn pass_on(self: &Arc<Self>) {
        loop {
            let Some(waiter) = ({
                let mut state = self.lock();
                let next = state.next();
                if next.is_none() {
                    state.busy = false;
                }
                next
            }) else {
                return;
            };
            match waiter.send(Turn(Some(Arc::clone(self)))) {
                Ok(()) => return,
                // That waiter gave up (timed out or was cancelled): take the turn back
                // without passing it on from its drop, and try the next one.
                Err(mut unused) => {
                    unused.0 = None;
                }
            }
        }
    }
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<Queue>>> {
    static GATES: OnceLock<Mutex<HashMap<PathBuf, Weak<Queue>>>> = OnceLock::new();
    GATES.get_or_init(Default::default)
}

impl WriterGate {
    /// No gate: every writer proceeds at once.
    pub(crate) fn open() -> Self {
        WriterGate(None)
    }

    /// The gate every writer to the file at `path` in this process shares. In-memory
    /// databases (no file: each connection may be a database of its own) get none.
    pub(crate) fn of_file(path: &Path) -> Self {
        let name = path.as_os_str();
        if name.is_empty() || name == ":memory:" {
            return WriterGate::open();
        }
        // The parent exists before the file does: the key is the same before and after the
        // file is created.
        let key = match (path.parent(), path.file_name()) {
            (Some(parent), Some(file)) => std::fs::canonicalize(if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            })
            .map(|parent| parent.join(file))
            .unwrap_or_else(|_| path.to_path_buf()),
            _ => path.to_path_buf(),
        };
        let mut gates = registry().lock().unwrap_or_else(|e| e.into_inner());
        gates.retain(|_, gate| gate.strong_count() > 0);
        if let Some(gate) = gates.get(&key).and_then(Weak::upgrade) {
            return WriterGate(Some(gate));
        }
        let gate = Arc::new(Queue::default());
        gates.insert(key, Arc::downgrade(&gate));
        WriterGate(Some(gate))
    }

    /// Waits for this writer's turn (at once without a gate).
    pub(crate) async fn enter(&self, priority: Priority) -> Result<Turn, sqlx::Error> {
        self.enter_within(priority, WAIT).await
    }

    async fn enter_within(&self, priority: Priority, wait: Duration) -> Result<Turn, sqlx::Error> {
        let Some(queue) = &self.0 else {
            return Ok(Turn(None));
        };
        let waiting = {
            let mut state = queue.lock();
            if !state.busy {
                state.busy = true;
                return Ok(Turn(Some(Arc::clone(queue))));
            }
            let (sender, receiver) = oneshot::channel();
            match priority {
                Priority::Backlog => state.backlog.push_back(sender),
                _ => state.requests.push_back(sender),
            }
            receiver
        };
        // A turn sent after the timeout is dropped with the receiver, which passes it on.
        match tokio::time::timeout(wait, waiting).await {
            Ok(Ok(turn)) => Ok(turn),
            Ok(Err(_)) | Err(_) => Err(sqlx::Error::PoolTimedOut),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writers_to_one_file_take_turns() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a.db");
        std::fs::write(&path, b"").expect("create file");
        let first = WriterGate::of_file(&path);
        let second = WriterGate::of_file(&dir.path().join(".").join("a.db"));
        let turn = first.enter(Priority::Request).await.expect("first turn");
        let waiting =
            tokio::time::timeout(Duration::from_millis(50), second.enter(Priority::Request)).await;
        assert!(waiting.is_err(), "a second writer must wait for the first");
        drop(turn);
        let turn = tokio::time::timeout(Duration::from_secs(5), second.enter(Priority::Request))
            .await
            .expect("the turn comes when the first writer is done")
            .expect("second turn");
        drop(turn);
    }

    /// Queues `label` at `gate` and records it in `order` once its turn comes, then holds the
    /// turn until `release` fires.
    fn queue(
        gate: &WriterGate,
        priority: Priority,
        label: &'static str,
        order: &Arc<Mutex<Vec<&'static str>>>,
    ) -> tokio::task::JoinHandle<()> {
        let gate = gate.clone();
        let order = Arc::clone(order);
        tokio::spawn(async move {
            let _turn = gate.enter(priority).await.expect("a turn");
            order.lock().unwrap().push(label);
            tokio::task::yield_now().await;
        })
    }

    /// Waits until `count` writers are queued at `gate` (bounded).
    async fn queued(gate: &WriterGate, count: usize) {
        let queue = gate.0.as_ref().expect("a file's gate");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let waiting = {
                let state = queue.lock();
                state.requests.len() + state.backlog.len()
            };
            if waiting == count {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{waiting} queued, not {count}"
            );
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn backlog_goes_first_but_never_starves_a_request() {
        let dir = tempfile::tempdir().expect("temp dir");
        let gate = WriterGate::of_file(&dir.path().join("a.db"));
        let order = Arc::new(Mutex::new(Vec::new()));
        let held = gate.enter(Priority::Request).await.expect("held");
        let mut tasks = vec![queue(&gate, Priority::Request, "r1", &order)];
        queued(&gate, 1).await;
        tasks.push(queue(&gate, Priority::Request, "r2", &order));
        queued(&gate, 2).await;
        for (n, label) in ["b1", "b2", "b3", "b4", "b5", "b6"].into_iter().enumerate() {
            tasks.push(queue(&gate, Priority::Backlog, label, &order));
            queued(&gate, 3 + n).await;
        }
        drop(held);
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("every writer gets its turn")
                .expect("writer task");
        }
        assert_eq!(
            *order.lock().unwrap(),
            ["b1", "b2", "b3", "b4", "r1", "b5", "b6", "r2"],
            "FIFO within a priority, {BACKLOG_STREAK} backlog turns at most before a request"
        );
    }

    #[tokio::test]
    async fn a_writer_that_gave_up_does_not_keep_the_turn() {
        let dir = tempfile::tempdir().expect("temp dir");
        let gate = WriterGate::of_file(&dir.path().join("a.db"));
        let held = gate.enter(Priority::Request).await.expect("held");
        let gave_up = gate
            .enter_within(Priority::Backlog, Duration::from_millis(20))
            .await;
        assert!(matches!(gave_up, Err(sqlx::Error::PoolTimedOut)));
        let order = Arc::new(Mutex::new(Vec::new()));
        let next = queue(&gate, Priority::Request, "next", &order);
        queued(&gate, 2).await;
        drop(held);
        tokio::time::timeout(Duration::from_secs(5), next)
            .await
            .expect("the turn skips the writer that left")
            .expect("writer task");
        assert_eq!(*order.lock().unwrap(), ["next"]);
        let again = tokio::time::timeout(Duration::from_secs(5), gate.enter(Priority::Request))
            .await
            .expect("the turn is free again");
        assert!(again.is_ok());
    }

    #[tokio::test]
    async fn other_files_and_memory_databases_do_not_wait() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = WriterGate::of_file(&dir.path().join("a.db"));
        let b = WriterGate::of_file(&dir.path().join("b.db"));
        let _held = a.enter(Priority::Request).await.expect("a");
        let _also = b.enter(Priority::Request).await.expect("b: another file");
        let memory = WriterGate::of_file(Path::new(":memory:"));
        let _one = memory.enter(Priority::Request).await.expect("memory");
        let _two = memory
            .enter(Priority::Request)
            .await
            .expect("memory, again");
    }
}
