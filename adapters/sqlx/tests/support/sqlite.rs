use std::sync::Arc;

use seedwork::testing::contract::store::{Account, StoreUnderTest};
use seedwork_sqlx::{SqliteJsonRepository, SqliteStore};

/// A migrated store on a new database file; keep the directory alive as long as the store.
pub async fn fresh_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("seedwork.db");
    let store = SqliteStore::open(path.to_str().expect("utf-8 path"))
        .await
        .expect("open sqlite");
    (store, dir)
}

pub async fn fresh() -> (StoreUnderTest, tempfile::TempDir) {
    let (store, dir) = fresh_store().await;
    (under_test(&store), dir)
}

pub fn under_test(store: &SqliteStore) -> StoreUnderTest {
    StoreUnderTest {
        store: Arc::new(store.clone()),
        outbox: Arc::new(store.clone()),
        inbox: Arc::new(store.clone()),
        accounts: Arc::new(SqliteJsonRepository::<Account>::new(store)),
    }
}

/// The saga contract's view of a fresh store.
pub async fn fresh_sagas() -> (
    seedwork::testing::contract::saga::SagaUnderTest,
    tempfile::TempDir,
) {
    let (store, dir) = fresh_store().await;
    let under_test = seedwork::testing::contract::saga::SagaUnderTest {
        store: Arc::new(store.clone()),
        outbox: Arc::new(store.clone()),
        sagas: Arc::new(store),
    };
    (under_test, dir)
}

/// The event store contract's view of a fresh store.
pub async fn fresh_events() -> (
    seedwork::testing::contract::event_store::EventStoreUnderTest,
    tempfile::TempDir,
) {
    let (store, dir) = fresh_store().await;
    let under_test = seedwork::testing::contract::event_store::EventStoreUnderTest {
        store: Arc::new(store.clone()),
        events: Arc::new(store),
        concurrent_appends: false,
    };
    (under_test, dir)
}
