//! The publisher/consumer contract suite against the embedded broker: one test per check (each
//! on a fresh broker), then the whole suite on one shared broker on both runtime flavours.
//!
//! The crate's dev-dependency on itself turns on the `testing` feature, so plain `cargo test`
//! runs these.

use seedwork::memory::MemoryBroker;
use seedwork::testing::contract::broker;

seedwork::broker_contract_tests!(broker = async { MemoryBroker::new() });

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_on_one_broker_on_a_multi_threaded_runtime() {
    broker::run_all(&MemoryBroker::new()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn whole_suite_on_one_broker_on_a_current_thread_runtime() {
    broker::run_all(&MemoryBroker::new()).await;
}
