use std::str::FromStr;
use std::sync::Arc;

use seedwork::testing::contract::store::{Account, StoreUnderTest};
use seedwork_sqlx::sqlx::postgres::PgConnectOptions;
use seedwork_sqlx::sqlx::{self, AssertSqlSafe};
use seedwork_sqlx::{PostgresJsonRepository, PostgresStore};

/// The server `scripts/services up` starts, unless `SEEDWORK_POSTGRES_URL` says otherwise.
pub fn url() -> String {
    std::env::var("SEEDWORK_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://seedwork:seedwork@127.0.0.1:5432/seedwork".to_string())
}

/// Connect options for a new, empty schema of its own.
pub async fn fresh_schema() -> PgConnectOptions {
    let schema = format!("test_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&url())
        .await
        .expect("PostgreSQL is up");
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .expect("create schema");
    admin.close().await;
    PgConnectOptions::from_str(&url())
        .expect("url")
        .options([("search_path", schema.as_str())])
}

/// A migrated store in a new schema of its own.
pub async fn fresh_store() -> PostgresStore {
    let store = PostgresStore::connect_with(fresh_schema().await)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    store
}

pub async fn fresh() -> (StoreUnderTest, PostgresStore) {
    let store = fresh_store().await;
    (under_test(&store), store)
}

pub fn under_test(store: &PostgresStore) -> StoreUnderTest {
    StoreUnderTest {
        store: Arc::new(store.clone()),
        outbox: Arc::new(store.clone()),
        inbox: Arc::new(store.clone()),
        accounts: Arc::new(PostgresJsonRepository::<Account>::new(store)),
    }
}

/// The saga contract's view of a fresh store.
pub async fn fresh_sagas() -> (
    seedwork::testing::contract::saga::SagaUnderTest,
    PostgresStore,
) {
    let store = fresh_store().await;
    let under_test = seedwork::testing::contract::saga::SagaUnderTest {
        store: Arc::new(store.clone()),
        outbox: Arc::new(store.clone()),
        sagas: Arc::new(store.clone()),
    };
    (under_test, store)
}

/// The event store contract's view of a fresh store.
pub async fn fresh_events() -> (
    seedwork::testing::contract::event_store::EventStoreUnderTest,
    PostgresStore,
) {
    let store = fresh_store().await;
    let under_test = seedwork::testing::contract::event_store::EventStoreUnderTest {
        store: Arc::new(store.clone()),
        events: Arc::new(store.clone()),
        concurrent_appends: true,
    };
    (under_test, store)
}
