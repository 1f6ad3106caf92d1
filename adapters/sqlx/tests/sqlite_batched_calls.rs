//! On SQLite a unit of work sends `BEGIN` with its first statement and its last writes (carried
//! acknowledgements, the outbox) with `COMMIT`, in one call each, on a connection it begins and
//! ends itself. What that must not change, checked on a pool of one connection, so that a
//! connection handed back inside a transaction would be the next unit of work's:
//! - every statement runs inside the transaction, including those run on
//!   `SqliteTransaction::connection`;
//! - a failure in the last call rolls everything back and reports it;
//! - no connection goes back to the pool inside a transaction (committed, rolled back, failed,
//!   or with no statement at all).

use std::str::FromStr;
use std::sync::Arc;

use seedwork::prelude::*;
use seedwork::testing::contract::store::{publish_account_events, Account};
use seedwork_sqlx::{sqlx, SqliteJsonRepository, SqliteStore, SqliteTransaction};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

/// A migrated store whose pool holds one connection.
async fn one_connection_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("seedwork.db");
    let options = SqliteConnectOptions::from_str(path.to_str().expect("utf-8 path"))
        .expect("options")
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("pool");
    let store = SqliteStore::from_pool(pool);
    store.migrate().await.expect("migrate");
    (store, dir)
}

async fn count(store: &SqliteStore, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .expect("count")
}

async fn insert_on_the_connection(uow: &mut UnitOfWork, x: i64) {
    let tx = uow.transaction::<SqliteTransaction>().expect("sqlite");
    sqlx::query("INSERT INTO notas (x) VALUES (?)")
        .bind(x)
        .execute(tx.connection().await.expect("connection"))
        .await
        .expect("insert");
}

#[tokio::test]
async fn statements_on_the_connection_run_inside_the_transaction() {
    let (store, _dir) = one_connection_store().await;
    sqlx::query("CREATE TABLE notas (x INTEGER NOT NULL)")
        .execute(store.pool())
        .await
        .expect("create");
    let bus = Bus::builder()
        .store(Arc::new(store.clone()))
        .build()
        .expect("bus");

    let mut uow = bus.unit_of_work().await.expect("begin");
    insert_on_the_connection(&mut uow, 1).await;
    uow.rollback().await.expect("rollback");
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM notas").await,
        0,
        "a rolled-back statement stays undone"
    );

    let mut uow = bus.unit_of_work().await.expect("begin");
    insert_on_the_connection(&mut uow, 2).await;
    uow.commit().await.expect("commit");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM notas").await, 1);
}

#[tokio::test]
async fn a_failure_in_the_commit_call_rolls_everything_back_and_the_connection_is_clean() {
    let (store, _dir) = one_connection_store().await;
    // The outbox row goes with `COMMIT`; refuse it there.
    sqlx::query(
        "CREATE TRIGGER refuse_outbox BEFORE INSERT ON seedwork_outbox \
         BEGIN SELECT RAISE(ABORT, 'outbox refused'); END",
    )
    .execute(store.pool())
    .await
    .expect("trigger");
    let bus = publish_account_events(Bus::builder().store(Arc::new(store.clone())))
        .build()
        .expect("bus");
    let accounts = SqliteJsonRepository::<Account>::new(&store);

    let mut uow = bus.unit_of_work().await.expect("begin");
    accounts
        .add(&mut uow, &mut Account::open("refused"))
        .await
        .expect("add");
    let error = uow.commit().await.expect_err("the outbox insert fails");
    assert!(matches!(error, Error::Store(_)), "{error:?}");
    assert!(
        error.to_string().contains("outbox"),
        "the error names the failed write: {error}"
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM seedwork_aggregates").await,
        0,
        "the aggregate was rolled back with it"
    );

    sqlx::query("DROP TRIGGER refuse_outbox")
        .execute(store.pool())
        .await
        .expect("drop trigger");
    let mut uow = bus
        .unit_of_work()
        .await
        .expect("the next unit of work begins");
    accounts
        .add(&mut uow, &mut Account::open("accepted"))
        .await
        .expect("add");
    uow.commit().await.expect("commit");
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM seedwork_aggregates").await,
        1
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM seedwork_outbox").await,
        1
    );
}

#[tokio::test]
async fn units_of_work_without_statements_leave_the_connection_clean() {
    let (store, _dir) = one_connection_store().await;
    let bus = Bus::builder()
        .store(Arc::new(store.clone()))
        .build()
        .expect("bus");
    for _ in 0..3 {
        bus.unit_of_work()
            .await
            .expect("begin")
            .commit()
            .await
            .expect("an empty commit");
        bus.unit_of_work()
            .await
            .expect("begin")
            .rollback()
            .await
            .expect("an empty rollback");
    }
    let accounts = SqliteJsonRepository::<Account>::new(&store);
    let mut uow = bus.unit_of_work().await.expect("begin");
    accounts
        .add(&mut uow, &mut Account::open("after"))
        .await
        .expect("add");
    uow.commit().await.expect("commit");
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM seedwork_aggregates").await,
        1
    );
}
