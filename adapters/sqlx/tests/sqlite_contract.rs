//! The seedwork store contract suite on SQLite (a fresh database file per test).
#![cfg(feature = "sqlite")]

mod support;

use seedwork::testing::contract::store;
use support::sqlite::fresh;

macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (under_test, _dir) = fresh().await;
            store::$name(&under_test).await;
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
