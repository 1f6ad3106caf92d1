//! Producer batching: how messages published close together share one broker entry.

use std::time::Duration;

/// How a [`PulsarBroker`](crate::PulsarBroker)'s producers group messages into broker entries (set
/// with [`PulsarBuilder::batching`](crate::PulsarBuilder::batching); off unless asked for, see
/// below).
///
/// A batch is one entry on the broker holding several messages; the broker stores and acknowledges
/// entries, so one write and one receipt cover the whole batch. That is what lets the outbox relay
/// publish many messages per broker round trip. A batch is sent as soon as it holds
/// [`max_messages`](Self::max_messages) messages or [`max_bytes`](Self::max_bytes) of payload, and
/// at the latest [`max_delay`](Self::max_delay) after its first message, so a lone message waits
/// that long at most. A producer has one batch on its way to the broker at a time; messages keep
/// their publish order within and across batches.
///
/// Batches only fill when many publishes are outstanding at once: a publish returns with the
/// broker's receipt, so a caller with 16 publishes in flight (the outbox relay's default
/// `max_in_flight`) makes batches of at most 16, one broker round trip each. Give the relay more,
/// e.g. `OutboxRelay::max_in_flight(1000).batch_size(1000)` (docs/performance.md has the figures).
///
/// Consumers of this crate acknowledge a batch only once all of its messages are settled (see
/// [`PulsarConsumer`](crate::PulsarConsumer)), so batching changes nothing in what they deliver: a
/// message nacked or not yet handled keeps its whole entry unacknowledged, and a consumer that goes
/// away leaves the entry to be redelivered whole (the messages already handled come again; the
/// inbox recognises them).
///
/// **Why it is off by default: Key_Shared subscriptions.** pulsar-rs mixes keys in a batch and
/// gives the entry no key of its own, and the broker routes a Key_Shared subscription's entries by
/// the entry's key: batched entries are then spread over the subscription's consumers without
/// regard to their messages' keys (measured on Pulsar 4.0: messages of one key reached two
/// consumers), so a key's messages may be processed concurrently and out of order. Turn batching on
/// only for topics no Key_Shared subscription with several consumers reads, or turn it on for all
/// and exempt those topics with [`PulsarBuilder::unbatched`](crate::PulsarBuilder::unbatched).
/// Batching per key (what the Java client offers for Key_Shared) would not help the outbox relay:
/// it publishes a key's messages one after the other, so a key never has two in one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    pub(crate) enabled: bool,
    pub(crate) max_messages: u32,
    pub(crate) max_bytes: usize,
    pub(crate) max_delay: Duration,
}

impl Default for Batching {
    /// Off ([`Batching::off`]): safe for every subscription type.
    fn default() -> Self {
        Batching::off()
    }
}

impl Batching {
    /// Batching on: up to 1 000 messages or 128 KiB per batch, sent at most 1 ms after its
    /// first message (the Java client's defaults). Not for topics read through Key_Shared
    /// subscriptions (see [`Batching`]).
    pub fn on() -> Self {
        Batching {
            enabled: true,
            max_messages: 1000,
            max_bytes: 128 * 1024,
            max_delay: Duration::from_millis(1),
        }
    }

    /// No batching: one entry per message (the default).
    pub fn off() -> Self {
        Batching {
            enabled: false,
            ..Batching::on()
        }
    }

    /// The most messages in one batch (at least 2; 1 000 in [`on`](Self::on)).
    pub fn max_messages(mut self, max: u32) -> Self {
        self.max_messages = max.max(2);
        self
    }

    /// The payload bytes at which a batch is sent (at least 1; 128 KiB in [`on`](Self::on)).
    pub fn max_bytes(mut self, max: usize) -> Self {
        self.max_bytes = max.max(1);
        self
    }

    /// How long a batch may wait for more messages after its first one (at least 1 ms; 1 ms in
    /// [`on`](Self::on)). This is the latency batching adds to a lone message.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay.max(Duration::from_millis(1));
        self
    }

    /// Whether batching is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The producer options this batching asks of pulsar-rs.
    pub(crate) fn apply(&self, options: &mut pulsar::ProducerOptions) {
        if self.enabled {
            options.batch_size = Some(self.max_messages);
            options.batch_byte_size = Some(self.max_bytes);
            // Without a timeout pulsar-rs would hold a lone message until the batch fills.
            options.batch_timeout = Some(self.max_delay);
        } else {
            options.batch_size = None;
            options.batch_byte_size = None;
            options.batch_timeout = None;
        }
    }
}
