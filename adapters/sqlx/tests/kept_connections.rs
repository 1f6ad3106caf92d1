//! A PostgreSQL store keeps connections between transactions (they skip the pool's pings), and
//! keeps only one whose transaction ended cleanly: a transaction dropped midway or whose commit
//! failed rolls back and its connection is closed; a kept connection the server closed is
//! replaced without failing the next unit of work; no more connections are ever kept than the
//! store's capacity, so none is opened only to be closed; a closed store closes them and begins
//! nothing. (SQLite stores keep none: see `src/sqlite/mod.rs`.)
//!
//! `pg_backend_pid()` names the connection a transaction runs on.
#![cfg(feature = "postgres")]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use seedwork::uow::{Transaction, TransactionalStore};
use seedwork_sqlx::sqlx::{self, PgPool};
use seedwork_sqlx::{PostgresStore, PostgresTransaction};

fn connection(tx: &mut Box<dyn Transaction>) -> &mut sqlx::PgConnection {
    tx.as_any_mut()
        .downcast_mut::<PostgresTransaction>()
        .expect("a PostgreSQL transaction")
        .connection()
}

/// Runs `sql` on the transaction's connection.
async fn run(tx: &mut Box<dyn Transaction>, sql: &'static str) {
    sqlx::query(sql)
        .execute(connection(tx))
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
}

/// The single number `sql` selects, on the transaction's connection.
async fn number(tx: &mut Box<dyn Transaction>, sql: &'static str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql)
        .fetch_one(connection(tx))
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
    n
}

const PID: &str = "SELECT pg_backend_pid()::bigint";

/// A transaction and the backend it runs on.
async fn begin(store: &PostgresStore) -> (Box<dyn Transaction>, i64) {
    let mut tx = tokio::time::timeout(Duration::from_secs(10), store.begin())
        .await
        .expect("a transaction begins in time")
        .expect("begin");
    let pid = number(&mut tx, PID).await;
    (tx, pid)
}

/// A store in a fresh schema with the tables the tests write to; returns the backend of the
/// transaction that created them (now kept).
async fn store_with_tables() -> (PostgresStore, i64) {
    let store = support::postgres::fresh_store().await;
    let (mut tx, pid) = begin(&store).await;
    run(&mut tx, "CREATE TABLE parent (id BIGINT PRIMARY KEY)").await;
    run(
        &mut tx,
        "CREATE TABLE child (id BIGINT PRIMARY KEY, \
         parent BIGINT REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
    )
    .await;
    tx.commit().await.expect("commit");
    (store, pid)
}

async fn admin() -> PgPool {
    PgPool::connect(&support::postgres::url())
        .await
        .expect("PostgreSQL is up")
}

/// Waits (bounded) until the server no longer lists backend `pid`.
async fn until_gone(admin: &PgPool, pid: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (alive,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM pg_stat_activity WHERE pid = $1")
                .bind(i32::try_from(pid).expect("a pid"))
                .fetch_one(admin)
                .await
                .expect("pg_stat_activity");
        if alive == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "backend {pid} is still there"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL (scripts/services up postgres)"]
async fn a_transaction_that_ended_cleanly_leaves_its_connection_to_the_next() {
    let (store, first) = store_with_tables().await;
    let (tx, pid) = begin(&store).await;
    assert_eq!(pid, first, "after a commit");
    tx.rollback().await.expect("rollback");
    let (tx, pid) = begin(&store).await;
    assert_eq!(pid, first, "after a rollback");
    tx.rollback().await.expect("rollback");
}

#[tokio::test]
#[ignore = "needs PostgreSQL (scripts/services up postgres)"]
async fn a_transaction_dropped_midway_rolls_back_and_its_connection_is_not_kept() {
    let (store, first) = store_with_tables().await;
    let (mut tx, pid) = begin(&store).await;
    assert_eq!(pid, first, "runs on the kept connection");
    run(&mut tx, "INSERT INTO parent (id) VALUES (1)").await;
    drop(tx);

    let (mut tx, pid) = begin(&store).await;
    assert_ne!(pid, first, "a new connection");
    assert_eq!(
        number(&mut tx, "SELECT count(*) FROM parent").await,
        0,
        "the dropped transaction's write is gone"
    );
    tx.rollback().await.expect("rollback");
    let admin = admin().await;
    until_gone(&admin, first).await;
    admin.close().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL (scripts/services up postgres)"]
async fn a_transaction_whose_commit_failed_rolls_back_and_its_connection_is_not_kept() {
    let (store, first) = store_with_tables().await;
    let (mut tx, pid) = begin(&store).await;
    assert_eq!(pid, first, "runs on the kept connection");
    // The deferred foreign key is checked at COMMIT, which fails.
    run(&mut tx, "INSERT INTO child (id, parent) VALUES (1, 99)").await;
    tx.commit()
        .await
        .expect_err("the foreign key fails the commit");

    let (mut tx, pid) = begin(&store).await;
    assert_ne!(pid, first, "a new connection");
    assert_eq!(
        number(&mut tx, "SELECT count(*) FROM child").await,
        0,
        "the failed transaction's write is gone"
    );
    tx.rollback().await.expect("rollback");
}

#[tokio::test]
#[ignore = "needs PostgreSQL (scripts/services up postgres)"]
async fn a_kept_connection_the_server_closed_is_replaced_without_an_error() {
    let (store, first) = store_with_tables().await;
    let admin = admin().await;
    let (terminated,): (bool,) = sqlx::query_as("SELECT pg_terminate_backend($1)")
        .bind(i32::try_from(first).expect("a pid"))
        .fetch_one(&admin)
        .await
        .expect("terminate");
    assert!(terminated);
    until_gone(&admin, first).await;
    admin.close().await;

    let (tx, pid) = begin(&store).await;
    assert_ne!(pid, first, "a new connection");
    tx.commit().await.expect("commit");
}

/// Rounds of more concurrent transactions than the store keeps connections: every connection
/// is either kept for good or returned to the pool, so the backends seen stay bounded by the
/// concurrency plus the kept ones, however many rounds run.
#[tokio::test]
#[ignore = "needs PostgreSQL (scripts/services up postgres)"]
async fn connections_are_kept_for_good_never_opened_to_be_closed() {
    const CONCURRENT: usize = 8;
    const KEPT: usize = 4;
    let (store, _) = store_with_tables().await;
    let mut seen = BTreeSet::new();
    for _round in 0..10 {
        let mut open = Vec::new();
        for _ in 0..CONCURRENT {
            open.push(begin(&store).await);
        }
        // Commit in the reverse order of beginning, so that pooled ones end before kept ones.
        while let Some((tx, pid)) = open.pop() {
            seen.insert(pid);
            tx.commit().await.expect("commit");
        }
    }
    assert!(
        seen.len() <= CONCURRENT + KEPT,
        "{} backends for {CONCURRENT} concurrent transactions",
        seen.len()
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL (scripts/services up postgres)"]
async fn a_closed_store_closes_its_kept_connections_and_begins_nothing() {
    let (store, first) = store_with_tables().await;
    tokio::time::timeout(Duration::from_secs(10), store.close())
        .await
        .expect("closing does not wait for the kept connections");
    let admin = admin().await;
    until_gone(&admin, first).await;
    admin.close().await;
    let Err(error) = store.begin().await else {
        panic!("a closed store began a transaction");
    };
    assert!(error.is_transient(), "{error:?}");
}
