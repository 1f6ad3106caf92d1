//! The unit-of-work / outbox / inbox contract suite against the in-memory store.

use std::sync::Arc;

use seedwork::memory::{MemoryRepository, MemoryStore};
use seedwork::testing::contract::store::{self, Account, StoreUnderTest};

fn fresh() -> StoreUnderTest {
    let memory = MemoryStore::new();
    StoreUnderTest {
        store: Arc::new(memory.clone()),
        outbox: Arc::new(memory.clone()),
        accounts: Arc::new(MemoryRepository::<Account>::new(memory)),
    }
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            store::$name(&fresh()).await;
        }
    )*};
}

contract!(
    commit_persists_aggregate_and_outbox,
    rollback_discards_aggregate_and_outbox,
    failing_domain_handler_rolls_back,
    domain_handler_continues_the_transaction,
    savepoint_rollback_keeps_earlier_work,
    stale_update_is_a_conflict,
    concurrent_updates_win_each_version_once,
    inbox_accepts_each_message_once,
    outbox_claims_respect_leases_and_key_order,
    relay_keeps_key_order_through_failures,
    relay_crash_resends_and_inbox_absorbs,
    concurrent_relays_send_each_entry_once,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_on_a_multi_threaded_runtime() {
    store::run_all(|| async { fresh() }).await;
}
