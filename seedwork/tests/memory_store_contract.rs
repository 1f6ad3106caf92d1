//! The unit-of-work / outbox / inbox contract suite against the in-memory store.

use std::sync::Arc;

use seedwork::memory::{MemoryRepository, MemoryStore};
use seedwork::testing::contract::store::{self, Account, StoreUnderTest};

fn fresh() -> StoreUnderTest {
    let memory = MemoryStore::new();
    StoreUnderTest {
        store: Arc::new(memory.clone()),
        outbox: Arc::new(memory.clone()),
        inbox: Arc::new(memory.clone()),
        accounts: Arc::new(MemoryRepository::<Account>::new(memory)),
    }
}

seedwork::store_contract_tests!(fresh = async { (fresh(), ()) });

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_on_a_multi_threaded_runtime() {
    store::run_all(|| async { fresh() }).await;
}
