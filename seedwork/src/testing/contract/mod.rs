//! Contract suites: one set of tests for any implementation of a port.
//!
//! Each suite is a list of public `async fn`s taking the implementation under test; an adapter
//! calls them from its own `#[tokio::test]`s (or all at once with `run_all`). They create their
//! own uniquely named topics and rows, so they can run against a shared, long-lived backend.

pub mod broker;
pub mod event_store;
pub mod saga;
pub mod store;

/// Generates one `#[tokio::test]` per check of the [store suite](store), each on a fresh
/// backend.
///
/// `fresh` is an async expression evaluated once per test, yielding
/// `(StoreUnderTest, guard)`; the guard (a temp dir, a pool…) lives until the test ends. Extra
/// attributes before `fresh` go on every test (e.g. `#[ignore = "needs …"]`). The calling crate
/// needs `tokio` (with `macros` and `rt-multi-thread`) as a dev-dependency.
///
/// ```text
/// seedwork::store_contract_tests!(fresh = async { (my_store_under_test().await, ()) });
/// ```
#[macro_export]
macro_rules! store_contract_tests {
    ($(#[$meta:meta])* fresh = $fresh:expr $(,)?) => {
        $crate::__contract_tests!(
            store, [$(#[$meta])*], { $fresh.await };
            commit_persists_aggregate_and_outbox,
            rollback_discards_aggregate_and_outbox,
            failing_domain_handler_rolls_back,
            domain_handler_continues_the_transaction,
            savepoint_rollback_keeps_earlier_work,
            stale_update_is_a_conflict,
            concurrent_updates_win_each_version_once,
            inbox_accepts_each_message_once,
            inbox_accepts_a_list_as_one_by_one,
            outbox_claims_respect_leases_and_key_order,
            relay_keeps_key_order_through_failures,
            relay_crash_resends_and_inbox_absorbs,
            concurrent_relays_send_each_entry_once,
            list_pages_in_id_order,
            poison_entries_are_parked_and_other_keys_keep_flowing,
            a_parked_entry_holds_back_its_key_until_discarded,
            redrive_publishes_a_parked_entry_and_its_key_follows,
            transient_failures_never_park,
            lag_reports_age_pending_and_parked,
            renewal_keeps_a_slow_claim,
            inbox_purge_forgets_entries_past_the_window,
        );
    };
}

/// Generates one `#[tokio::test]` per check of the [broker suite](broker).
///
/// `broker` is an async expression evaluated once per test, yielding the broker under test.
/// Extra attributes before it go on every test.
///
/// ```text
/// seedwork::broker_contract_tests!(broker = async { MemoryBroker::new() });
/// ```
#[macro_export]
macro_rules! broker_contract_tests {
    ($(#[$meta:meta])* broker = $broker:expr $(,)?) => {
        $crate::__contract_tests!(
            broker, [$(#[$meta])*], { ($broker.await, ()) };
            publish_then_receive,
            every_subscription_gets_every_message,
            shared_subscription_delivers_each_message_once,
            nack_redelivers_after_backoff,
            dead_letter_after_max_deliveries,
            order_per_key_survives_a_nack,
            unacked_deliveries_of_a_dropped_consumer_are_redelivered,
            exclusive_refuses_a_second_consumer,
            failover_delivers_to_one_consumer_and_fails_over,
            key_shared_keeps_a_key_on_one_consumer,
            no_messages_from_before_the_subscription,
            double_ack_is_an_error,
            reject_dead_letters_at_once_with_the_reason,
            non_durable_subscription_delivers_while_attached,
            unsubscribe_deletes_an_unattached_subscription,
        );
    };
}

/// Generates one `#[tokio::test]` per check of the [saga suite](saga), each on a fresh
/// backend.
///
/// `fresh` is an async expression evaluated once per test, yielding
/// `(SagaUnderTest, guard)`; extra attributes before it go on every test.
///
/// ```text
/// seedwork::saga_contract_tests!(fresh = async { (my_saga_store_under_test().await, ()) });
/// ```
#[macro_export]
macro_rules! saga_contract_tests {
    ($(#[$meta:meta])* fresh = $fresh:expr $(,)?) => {
        $crate::__contract_tests!(
            saga, [$(#[$meta])*], { $fresh.await };
            saved_instance_reads_back,
            stale_or_second_insert_is_a_conflict,
            rollback_discards_the_instance,
            due_lists_passed_deadlines_earliest_first,
            find_lists_every_saga_of_a_conversation,
            concurrent_saves_all_take_effect,
            happy_path_sends_each_command_once,
            failure_compensates_earlier_steps_in_reverse,
            deadline_takes_the_failure_path,
            redelivered_reply_has_no_second_effect,
            concurrent_messages_for_one_instance_both_take_effect,
        );
    };
}

/// Generates one `#[tokio::test]` per check of the [event store suite](event_store), each on a
/// fresh backend.
///
/// `fresh` is an async expression evaluated once per test, yielding
/// `(EventStoreUnderTest, guard)`; extra attributes before it go on every test.
///
/// ```text
/// seedwork::event_store_contract_tests!(fresh = async { (my_event_store_under_test().await, ()) });
/// ```
#[macro_export]
macro_rules! event_store_contract_tests {
    ($(#[$meta:meta])* fresh = $fresh:expr $(,)?) => {
        $crate::__contract_tests!(
            event_store, [$(#[$meta])*], { $fresh.await };
            appended_events_read_back_in_order,
            a_stale_append_is_a_conflict_and_writes_nothing,
            a_rolled_back_append_leaves_nothing,
            read_all_follows_positions_across_streams,
            a_reader_never_skips_an_event_committed_late,
            eight_writers_on_one_stream_append_each_version_once,
            the_latest_snapshot_is_kept,
            a_snapshot_loads_the_state_a_replay_gives,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __contract_tests {
    ($suite:ident, $metas:tt, $setup:block; $name:ident, $($rest:ident,)*) => {
        $crate::__contract_test!($suite, $metas, $setup, $name);
        $crate::__contract_tests!($suite, $metas, $setup; $($rest,)*);
    };
    ($suite:ident, $metas:tt, $setup:block;) => {};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __contract_test {
    ($suite:ident, [$($meta:tt)*], $setup:block, $name:ident) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $($meta)*
        async fn $name() {
            // The guard (a temp dir, a pool…) lives until the test ends.
            let (under_test, _guard) = $setup;
            $crate::testing::contract::$suite::$name(&under_test).await;
        }
    };
}
