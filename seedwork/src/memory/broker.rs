//! Placeholder replaced by the in-memory broker.
use crate::messaging::SubscriptionOptions;

/// The in-memory broker.
#[derive(Clone, Debug, Default)]
pub struct MemoryBroker {}

/// A consumer of the in-memory broker.
#[derive(Debug)]
pub struct MemoryConsumer {
    _options: SubscriptionOptions,
}
