//! The event store contract suite against the in-memory store.

use std::sync::Arc;

use seedwork::memory::MemoryStore;
use seedwork::testing::contract::event_store::{self, EventStoreUnderTest};

fn fresh() -> EventStoreUnderTest {
    let memory = MemoryStore::new();
    EventStoreUnderTest {
        store: Arc::new(memory.clone()),
        events: Arc::new(memory),
        concurrent_appends: false,
    }
}

seedwork::event_store_contract_tests!(fresh = async { (fresh(), ()) });

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_on_a_multi_threaded_runtime() {
    event_store::run_all(|| async { fresh() }).await;
}
