//! Failures during commit, on both backends: an error comes back, nothing is half-written, and
//! the store keeps working.

mod support;

use std::sync::Arc;

use seedwork::application::DomainEventHandler;
use seedwork::prelude::*;
use seedwork::testing::contract::store::{
    publish_account_events, Account, AccountOpened, StoreUnderTest,
};
use seedwork_sqlx::sqlx;

/// Runs a statement on the unit of work's connection, then lets the commit go on.
struct SabotageDuringCommit {
    statement: &'static str,
    sqlite: bool,
}

#[seedwork::async_trait]
impl DomainEventHandler<AccountOpened> for SabotageDuringCommit {
    async fn handle(&self, _event: &AccountOpened, uow: &mut UnitOfWork) -> Result<()> {
        let outcome = if self.sqlite {
            let tx = uow.transaction::<seedwork_sqlx::SqliteTransaction>()?;
            sqlx::query(self.statement)
                .execute(tx.connection().await?)
                .await
                .map(|_| ())
        } else {
            let tx = uow.transaction::<seedwork_sqlx::PostgresTransaction>()?;
            sqlx::query(self.statement)
                .execute(tx.connection().await?)
                .await
                .map(|_| ())
        };
        // The sabotage itself may report the broken connection; the commit must notice anyway.
        let _ = outcome;
        Ok(())
    }
}

fn bus(under_test: &StoreUnderTest, sabotage: SabotageDuringCommit) -> Bus {
    publish_account_events(
        Bus::builder()
            .store(Arc::clone(&under_test.store))
            .on_event(sabotage),
    )
    .build()
    .unwrap()
}

async fn commit_fails_and_leaves_nothing(under_test: &StoreUnderTest, bus: &Bus) {
    let mut uow = bus.unit_of_work().await.unwrap();
    under_test
        .accounts
        .add(&mut uow, &mut Account::open("victim"))
        .await
        .unwrap();
    let err = uow.commit().await.expect_err("the commit must fail");
    // A connection lost mid-commit is an outage: `Unavailable`, which a caller may retry.
    assert!(
        matches!(err, Error::Store(_) | Error::Unavailable(_)),
        "a store error, got {err:?}"
    );
    assert!(
        under_test
            .accounts
            .get(&"victim".to_string())
            .await
            .unwrap()
            .is_none(),
        "the aggregate was rolled back"
    );
    assert_eq!(
        under_test.outbox.pending().await.unwrap(),
        0,
        "no outbox row"
    );

    let healthy = Bus::builder()
        .store(Arc::clone(&under_test.store))
        .build()
        .unwrap();
    let mut uow = healthy.unit_of_work().await.unwrap();
    under_test
        .accounts
        .add(&mut uow, &mut Account::open("after"))
        .await
        .unwrap();
    uow.commit()
        .await
        .expect("the store still works afterwards");
    assert!(under_test
        .accounts
        .get(&"after".to_string())
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn sqlite_outbox_write_failure_rolls_back_the_aggregate() {
    let (under_test, _dir) = support::sqlite::fresh().await;
    let bus = bus(
        &under_test,
        SabotageDuringCommit {
            statement: "DROP TABLE seedwork_outbox",
            sqlite: true,
        },
    );
    commit_fails_and_leaves_nothing(&under_test, &bus).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/services up"]
async fn postgres_outbox_write_failure_rolls_back_the_aggregate() {
    let (under_test, _store) = support::postgres::fresh().await;
    let bus = bus(
        &under_test,
        SabotageDuringCommit {
            statement: "DROP TABLE seedwork_outbox",
            sqlite: false,
        },
    );
    commit_fails_and_leaves_nothing(&under_test, &bus).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/services up"]
async fn postgres_connection_killed_mid_commit_is_an_error_not_a_panic() {
    let (under_test, _store) = support::postgres::fresh().await;
    let bus = bus(
        &under_test,
        SabotageDuringCommit {
            statement: "SELECT pg_terminate_backend(pg_backend_pid())",
            sqlite: false,
        },
    );
    commit_fails_and_leaves_nothing(&under_test, &bus).await;
}
