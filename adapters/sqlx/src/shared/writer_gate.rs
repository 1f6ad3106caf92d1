//! One writer at a time per database file, queued inside the process.
//!
//! SQLite lets one transaction write at a time, and every transaction here opens with
//! `BEGIN IMMEDIATE`. When several connections of one pool race for that lock, the losers do
//! not queue: SQLite's busy handler puts each to sleep and retries, with sleeps growing from
//! 1 ms to 100 ms. Under load most of a writer's time goes to those sleeps, the lock sits
//! idle between a commit and the next sleeper's wake-up, and the unlucky writer waits the
//! longest — throughput falls and the latency tail grows with every added connection.
//!
//! The gate makes the writers of one process take turns in FIFO order on an async semaphore
//! before they begin, so the next one starts the moment the previous one commits and nobody
//! sleeps. The lock itself is still SQLite's: other processes on the same file still meet the
//! busy handler, and nothing here is needed for correctness. Every pool and transport on one
//! file share its gate (the registry is keyed by the file's path), because they share its lock.
//!
//! A writer that cannot get its turn within [`WAIT`] (as long as the busy timeout the stores
//! set) fails with `PoolTimedOut`, a transient error, as a busy database would.
//!
//! The gate counts its turns, how long they were held and how long writers waited for them
//! ([`WriterStats`]): how busy the one writer is, the first thing to know about a SQLite
//! system under load.

#[cfg(feature = "sqlite")]
use std::collections::HashMap;
#[cfg(feature = "sqlite")]
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
#[cfg(feature = "sqlite")]
use std::sync::{Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a writer waits for its turn before giving up.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// The gate of one database (or none: PostgreSQL locks rows, not the database).
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct WriterGate(Option<Arc<Gate>>);

/// The turns and what they are counted in.
#[derive(Debug)]
pub(crate) struct Gate {
    turns: Arc<Semaphore>,
    counted: Counters,
}

/// Totals since the gate was made, in nanoseconds.
#[derive(Debug, Default)]
struct Counters {
    turns: AtomicU64,
    held: AtomicU64,
    waited: AtomicU64,
}

/// What the writers of one SQLite database in this process did at its gate, since the first
/// store on it was opened: every write transaction takes one turn. Sample it twice: the share
/// of the time between the samples that `held` grew by is how busy the one writer was (near
/// 100 %, the writer is what limits throughput); `waited` over `turns` is the mean wait.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Turns taken and given back.
    pub turns: u64,
    /// How long those turns were held, together.
    pub held: Duration,
    /// How long writers waited for their turn, together.
    pub waited: Duration,
}

/// A writer's turn, held until dropped (with the transaction it guards): the permit, its gate
/// (to count the turn in) and when it began.
#[derive(Debug)]
pub(crate) struct Turn(Option<(OwnedSemaphorePermit, Arc<Gate>, Instant)>);

impl Drop for Turn {
    /// Counts the turn; the permit goes back right after, with the fields.
    fn drop(&mut self) {
        if let Some((_, gate, since)) = &self.0 {
            gate.counted.turns.fetch_add(1, Ordering::Relaxed);
            gate.counted
                .held
                .fetch_add(nanos(since.elapsed()), Ordering::Relaxed);
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(feature = "sqlite")]
fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<Gate>>> {
    static GATES: OnceLock<Mutex<HashMap<PathBuf, Weak<Gate>>>> = OnceLock::new();
    GATES.get_or_init(Default::default)
}

impl WriterGate {
    /// No gate: every writer proceeds at once.
    pub(crate) fn open() -> Self {
        WriterGate(None)
    }

    /// The gate every writer to the file at `path` in this process shares. In-memory
    /// databases (no file: each connection may be a database of its own) get none.
    #[cfg(feature = "sqlite")]
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
        let gate = Arc::new(Gate {
            turns: Arc::new(Semaphore::new(1)),
            counted: Counters::default(),
        });
        gates.insert(key, Arc::downgrade(&gate));
        WriterGate(Some(gate))
    }

    /// The gate's totals so far; `None` without a gate.
    pub(crate) fn stats(&self) -> Option<WriterStats> {
        let gate = self.0.as_ref()?;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Some(WriterStats {
            turns: read(&gate.counted.turns),
            held: Duration::from_nanos(read(&gate.counted.held)),
            waited: Duration::from_nanos(read(&gate.counted.waited)),
        })
    }

    /// Waits for this writer's turn (at once without a gate).
    pub(crate) async fn enter(&self) -> Result<Turn, sqlx::Error> {
        let Some(gate) = &self.0 else {
            return Ok(Turn(None));
        };
        let asked = Instant::now();
        let waited = tokio::time::timeout(WAIT, Arc::clone(&gate.turns).acquire_owned()).await;
        gate.counted
            .waited
            .fetch_add(nanos(asked.elapsed()), Ordering::Relaxed);
        match waited {
            Ok(Ok(permit)) => Ok(Turn(Some((permit, Arc::clone(gate), Instant::now())))),
            // The semaphore is never closed; a closed one would mean no turn will ever come.
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
        let turn = first.enter().await.expect("first turn");
        let waiting = tokio::time::timeout(Duration::from_millis(50), second.enter()).await;
        assert!(waiting.is_err(), "a second writer must wait for the first");
        drop(turn);
        let turn = tokio::time::timeout(Duration::from_secs(5), second.enter())
            .await
            .expect("the turn comes when the first writer is done")
            .expect("second turn");
        drop(turn);
    }

    #[tokio::test]
    async fn turns_are_counted_with_how_long_they_were_held_and_awaited() {
        let dir = tempfile::tempdir().expect("temp dir");
        let gate = WriterGate::of_file(&dir.path().join("counted.db"));
        assert_eq!(gate.stats(), Some(WriterStats::default()));
        let turn = gate.enter().await.expect("first turn");
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter().await.map(drop) }
        });
        let held_at_least = Duration::from_millis(20);
        tokio::time::sleep(held_at_least).await;
        drop(turn);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the second turn comes")
            .expect("task")
            .expect("second turn");
        let stats = gate.stats().expect("a file has a gate");
        assert_eq!(stats.turns, 2);
        assert!(stats.held >= held_at_least, "{stats:?}");
        assert!(stats.waited > Duration::ZERO, "{stats:?}");
        assert_eq!(WriterGate::open().stats(), None, "no gate, no figures");
    }

    #[tokio::test]
    async fn other_files_and_memory_databases_do_not_wait() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = WriterGate::of_file(&dir.path().join("a.db"));
        let b = WriterGate::of_file(&dir.path().join("b.db"));
        let _held = a.enter().await.expect("a");
        let _also = b.enter().await.expect("b: another file");
        let memory = WriterGate::of_file(Path::new(":memory:"));
        let _one = memory.enter().await.expect("memory");
        let _two = memory.enter().await.expect("memory, again");
    }
}
