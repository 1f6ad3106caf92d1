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
