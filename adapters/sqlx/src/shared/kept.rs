//! Connections kept between transactions, so that a transaction does not pay the pool's
//! hand-over.
//!
//! sqlx returns every pooled connection through a task that first pings it (a round trip to
//! the server on PostgreSQL, to the connection's worker thread on SQLite) and only then puts
//! it back; PostgreSQL pools also ping before handing one out (`test_before_acquire`). A unit
//! of work is short, so those two round trips are a large part of a small transaction.
//!
//! A store keeps up to [`Dialect::KEPT_CONNECTIONS`](crate::dialect::Dialect::KEPT_CONNECTIONS)
//! connections *detached* from its pool: a transaction takes an idle one (or acquires from the
//! pool when none is idle), and gives it back after a successful commit or rollback. Only a
//! connection whose transaction ended cleanly is kept: one whose transaction was dropped
//! midway, or whose `BEGIN`, `COMMIT` or `ROLLBACK` failed, is closed (its open transaction, if
//! any, rolls back with it). A pooled connection is detached only while fewer than the capacity
//! exist, so none is ever detached and then closed for want of room (each would make the pool
//! open another). Detached connections do not count against the pool's `max_connections` and do
//! not hold up `Pool::close`; [`SqlStore::close`](crate::SqlStore::close) closes the idle ones.
//!
//! PostgreSQL keeps four; SQLite none, as measured (`docs/performance.md`, round 5).

use std::sync::Mutex;

use sqlx::pool::PoolConnection;
use sqlx::Database;

/// The connections one store (or transport) keeps for its transactions.
pub(crate) struct KeptConnections<DB: Database> {
    state: Mutex<State<DB>>,
    capacity: usize,
}

struct State<DB: Database> {
    /// The kept connections no transaction is using.
    idle: Vec<DB::Connection>,
    /// How many kept connections exist: idle, or in a transaction. Bounded by the capacity, so
    /// a connection is only ever detached from the pool to stay, never to be closed when the
    /// set turns out to be full: that would make the pool open a new one for each.
    owned: usize,
}

impl<DB: Database> KeptConnections<DB> {
    /// Keeps at most `capacity` connections (none with 0: every transaction uses the pool).
    pub(crate) fn new(capacity: usize) -> Self {
        KeptConnections {
            state: Mutex::new(State {
                idle: Vec::with_capacity(capacity),
                owned: 0,
            }),
            capacity,
        }
    }

    /// An idle kept connection, the most recently used first (its caches are warmest).
    pub(crate) fn take(&self) -> Option<DB::Connection> {
        self.lock().idle.pop()
    }

    /// Gives back a kept connection whose transaction ended cleanly.
    pub(crate) fn give_back(&self, connection: DB::Connection) {
        self.lock().idle.push(connection);
    }

    /// A kept connection was closed (its transaction failed): room for another.
    pub(crate) fn lost(&self) {
        let mut state = self.lock();
        state.owned = state.owned.saturating_sub(1);
    }

    /// Keeps a pooled `connection`, detached from its pool, if fewer than the capacity exist;
    /// otherwise returns it to the pool.
    pub(crate) fn keep_pooled(&self, connection: PoolConnection<DB>) {
        let mut state = self.lock();
        if state.owned < self.capacity {
            state.owned += 1;
            state.idle.push(connection.detach());
        } else {
            drop(state);
            drop(connection);
        }
    }

    /// Every idle kept connection, to close them; those still in a transaction come back
    /// later and are kept (a closed store begins no transaction that would take them).
    pub(crate) fn drain(&self) -> Vec<DB::Connection> {
        let mut state = self.lock();
        let idle = std::mem::take(&mut state.idle);
        state.owned = state.owned.saturating_sub(idle.len());
        idle
    }

    /// `(idle, owned)`: equal whenever no transaction holds a kept connection.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (usize, usize) {
        let state = self.lock();
        (state.idle.len(), state.owned)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<DB>> {
        // A panic while holding the lock cannot leave the state half-changed.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<DB: Database> std::fmt::Debug for KeptConnections<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("KeptConnections")
            .field("idle", &state.idle.len())
            .field("owned", &state.owned)
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use std::future::Future;
    use std::sync::Arc;
    use std::task::Poll;

    use super::KeptConnections;
    use crate::dialect::open_transaction;
    use crate::shared::writer_gate::WriterGate;
    use crate::sqlite::Sqlite;

    /// Polls `future` once, as a `select!` or a timeout that fires would, then drops it.
    async fn poll_once_then_drop<F: Future>(future: F) {
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|cx| {
            let _ = future.as_mut().poll(cx);
            Poll::Ready(())
        })
        .await;
    }

    /// A transaction whose `begin` or `commit` future is dropped midway gives its kept
    /// connection's place back: once nothing is in flight, every kept connection is idle.
    /// (Should a future finish within its one poll, that holds as well.)
    #[tokio::test]
    async fn a_cancelled_begin_or_commit_gives_its_place_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("kept.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.expect("pool");
        let gate = WriterGate::open();
        let kept = Arc::new(KeptConnections::<sqlx::Sqlite>::new(1));

        // A clean transaction leaves one kept connection, idle.
        let clean = || async {
            let tx = open_transaction::<Sqlite>(&pool, &gate, &kept)
                .await
                .expect("begin");
            tx.commit().await.expect("commit");
            assert_eq!(kept.counts(), (1, 1), "kept after a clean commit");
        };
        for round in 0..5 {
            clean().await;
            let tx = open_transaction::<Sqlite>(&pool, &gate, &kept)
                .await
                .expect("begin");
            poll_once_then_drop(tx.commit()).await;
            let (idle, owned) = kept.counts();
            assert_eq!(idle, owned, "round {round}: after a cancelled commit");

            clean().await;
            poll_once_then_drop(open_transaction::<Sqlite>(&pool, &gate, &kept)).await;
            let (idle, owned) = kept.counts();
            assert_eq!(idle, owned, "round {round}: after a cancelled begin");
        }
        clean().await;
    }
}
