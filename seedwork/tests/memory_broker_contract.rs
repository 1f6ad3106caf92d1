//! The publisher/consumer contract suite against the embedded broker.

use seedwork::memory::MemoryBroker;
use seedwork::testing::contract::broker;

seedwork::broker_contract_tests!(broker = async { MemoryBroker::new() });

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_on_one_broker_on_a_multi_threaded_runtime() {
    broker::run_all(&MemoryBroker::new()).await;
}
