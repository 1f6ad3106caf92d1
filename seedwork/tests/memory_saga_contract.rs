//! The saga store contract suite against the in-memory store.

use std::sync::Arc;

use seedwork::memory::MemoryStore;
use seedwork::testing::contract::saga::{self, SagaUnderTest};

fn fresh() -> SagaUnderTest {
    let memory = MemoryStore::new();
    SagaUnderTest {
        store: Arc::new(memory.clone()),
        outbox: Arc::new(memory.clone()),
        sagas: Arc::new(memory),
    }
}

seedwork::saga_contract_tests!(fresh = async { (fresh(), ()) });

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_on_a_multi_threaded_runtime() {
    saga::run_all(|| async { fresh() }).await;
}
