//! The publisher/consumer contract suite against the embedded broker.

use seedwork::memory::MemoryBroker;
use seedwork::testing::contract::broker;

macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            broker::$name(&MemoryBroker::new()).await;
        }
    )*};
}

contract!(
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
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_on_one_broker_on_a_multi_threaded_runtime() {
    broker::run_all(&MemoryBroker::new()).await;
}
