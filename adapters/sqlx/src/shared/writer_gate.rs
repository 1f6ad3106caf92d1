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

#[cfg(feature = "sqlite")]
use std::collections::HashMap;
#[cfg(feature = "sqlite")]
use std::path::{Path, PathBuf};
use std::sync::Arc;
#[cfg(feature = "sqlite")]
use std::sync::{Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a writer waits for its turn before giving up.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// The gate of one database (or none: PostgreSQL locks rows, not the database).
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct WriterGate(Option<Arc<Semaphore>>);

/// A writer's turn, held until dropped (with the transaction it guards).
#[derive(Debug)]
pub(crate) struct Turn(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

#[cfg(feature = "sqlite")]
fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<Semaphore>>> {
    static GATES: OnceLock<Mutex<HashMap<PathBuf, Weak<Semaphore>>>> = OnceLock::new();
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
        let gate = Arc::new(Semaphore::new(1));
        gates.insert(key, Arc::downgrade(&gate));
        WriterGate(Some(gate))
    }

    /// Waits for this writer's turn (at once without a gate).
    pub(crate) async fn enter(&self) -> Result<Turn, sqlx::Error> {
        let Some(gate) = &self.0 else {
            return Ok(Turn(None));
        };
        match tokio::time::timeout(WAIT, Arc::clone(gate).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Turn(Some(permit))),
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
