use std::any::Any;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use super::Message;
use crate::error::Result;

/// How a subscription shares its messages among the consumers attached to it (Pulsar's
/// subscription types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SubscriptionKind {
    /// Messages are spread over all consumers (the default, as in the tutorial).
    #[default]
    Shared,
    /// Like `Shared`, but all messages with one key go to the same consumer.
    KeyShared,
    /// One consumer receives everything; the next takes over when it goes away.
    Failover,
    /// Only one consumer may attach; a second one is refused.
    Exclusive,
}

/// Why a broker refused to attach to or delete a subscription: the same refusals on every
/// broker that makes them, carried as the source of [`Error::Broker`](crate::Error::Broker).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscriptionRefused {
    /// A consumer asked for the other [`durable`](SubscriptionOptions::durable) than the
    /// subscription's; `durable` is the subscription's.
    #[error(
        "subscription `{subscription}` on topic `{topic}` is {}; cannot attach a consumer \
         asking for a {} one",
        if *durable { "durable" } else { "non-durable" },
        if *durable { "non-durable" } else { "durable" }
    )]
    DurabilityMismatch {
        /// The topic.
        topic: String,
        /// The subscription.
        subscription: String,
        /// Whether the existing subscription is durable.
        durable: bool,
    },
    /// [`Subscriber::unsubscribe`] while consumers are attached.
    #[error(
        "subscription `{subscription}` on topic `{topic}` has consumers attached; it is deleted \
         only once they are gone"
    )]
    InUse {
        /// The topic.
        topic: String,
        /// The subscription.
        subscription: String,
    },
}

/// When and how often a message that was negatively acknowledged comes back.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Deliveries before the message goes to the dead-letter topic (at least 1).
    pub max_deliveries: u32,
    /// Delay before the first redelivery.
    pub initial_backoff: Duration,
    /// Upper bound of the delay.
    pub max_backoff: Duration,
    /// Factor applied to the delay after each failed delivery.
    pub multiplier: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_deliveries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            multiplier: 2,
        }
    }
}

impl RetryPolicy {
    /// The delay before redelivering a message that has failed `failed_deliveries` times (≥ 1).
    ///
    /// ```
    /// # use std::time::Duration;
    /// use seedwork::messaging::RetryPolicy;
    /// let policy = RetryPolicy::default();
    /// assert_eq!(policy.backoff(1), Duration::from_millis(100));
    /// assert_eq!(policy.backoff(3), Duration::from_millis(400));
    /// assert_eq!(policy.backoff(100), Duration::from_secs(30));
    /// ```
    pub fn backoff(&self, failed_deliveries: u32) -> Duration {
        crate::backoff::exponential(
            self.initial_backoff,
            self.multiplier,
            failed_deliveries,
            self.max_backoff,
        )
    }
}

/// Everything needed to attach a consumer to a topic.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionOptions {
    /// The topic to read.
    pub topic: String,
    /// The subscription name (consumers with the same name share its messages).
    pub subscription: String,
    /// How consumers of the subscription share messages.
    pub kind: SubscriptionKind,
    /// Redelivery and dead-letter policy.
    pub retry: RetryPolicy,
    /// Where messages go after `retry.max_deliveries`; `None` uses
    /// `"{topic}-{subscription}-DLQ"` (Pulsar's convention).
    pub dead_letter_topic: Option<String>,
    /// Whether the subscription outlives its consumers (the default, `true`): a durable
    /// subscription collects the topic's messages while no consumer is attached, and delivers
    /// them when one attaches again. A non-durable one (Pulsar's non-durable cursor) exists
    /// only while a consumer is attached: it is removed, with what it had not delivered, when
    /// its last consumer goes away (a consumer that died without detaching counts as gone once
    /// its broker notices), so messages published meanwhile are never delivered to it. For
    /// consumers that only forward live events — a BFF's websocket feed — whose messages are
    /// worth nothing once nobody listens, and whose durable subscriptions would otherwise
    /// collect a backlog for good. Durability is fixed for as long as the subscription exists:
    /// attaching with the other one is an [`Error::Broker`](crate::Error::Broker) on the
    /// embedded brokers (on Pulsar, the broker decides).
    pub durable: bool,
}

impl SubscriptionOptions {
    /// A Shared subscription with the default retry policy.
    pub fn new(topic: impl Into<String>, subscription: impl Into<String>) -> Self {
        SubscriptionOptions {
            topic: topic.into(),
            subscription: subscription.into(),
            kind: SubscriptionKind::default(),
            retry: RetryPolicy::default(),
            dead_letter_topic: None,
            durable: true,
        }
    }

    /// Makes the subscription durable (the default) or not (see
    /// [`durable`](SubscriptionOptions::durable)).
    ///
    /// ```
    /// use seedwork::messaging::SubscriptionOptions;
    /// let live_feed = SubscriptionOptions::new("ciclo-reserva", "bff-host-8080").durable(false);
    /// assert!(!live_feed.durable);
    /// assert!(SubscriptionOptions::new("ciclo-reserva", "notificaciones").durable);
    /// ```
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Sets the subscription kind.
    pub fn kind(mut self, kind: SubscriptionKind) -> Self {
        self.kind = kind;
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the dead-letter topic.
    pub fn dead_letter_topic(mut self, topic: impl Into<String>) -> Self {
        self.dead_letter_topic = Some(topic.into());
        self
    }

    /// The dead-letter topic in effect.
    pub fn effective_dead_letter_topic(&self) -> String {
        self.dead_letter_topic
            .clone()
            .unwrap_or_else(|| format!("{}-{}-DLQ", self.topic, self.subscription))
    }
}

/// One delivery of a message to a consumer.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The message.
    pub message: Message,
    /// 1 for the first delivery, 2 for the first redelivery…
    pub attempt: u32,
    /// The consumer's handle for acknowledging this delivery; meaningful only to the consumer
    /// that produced it.
    pub token: u64,
}

/// Acknowledgements a consumer hands to a store, to be written in the store's own transaction
/// (the unit of work's transaction port has an `acknowledge` for it) instead of after it.
///
/// A broker that keeps its subscriptions in the store's database (`seedwork-sqlx`'s transport,
/// fed by the store's outbox) can settle a message in the transaction that commits the
/// handler's effects: the message is gone from the subscription exactly when its effects are
/// durable, and no write transaction of its own is needed to settle it. Opaque: only the
/// backend whose consumer made it can read it (with [`downcast_ref`](Self::downcast_ref)).
pub struct TransactionalAck {
    inner: Box<dyn Any + Send + Sync>,
}

impl TransactionalAck {
    /// Wraps a backend's own description of the acknowledgements.
    pub fn new<T: Any + Send + Sync>(acknowledgements: T) -> Self {
        TransactionalAck {
            inner: Box::new(acknowledgements),
        }
    }

    /// The backend's description, if it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.inner.downcast_ref()
    }
}

impl fmt::Debug for TransactionalAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransactionalAck").finish_non_exhaustive()
    }
}

/// Attaches consumers to topics.
#[async_trait]
pub trait Subscriber: Send + Sync {
    /// Attaches a consumer. Messages published to the topic before the subscription first
    /// existed are not delivered to it.
    async fn subscribe(&self, options: SubscriptionOptions) -> Result<Box<dyn Consumer>>;

    /// Deletes the subscription `subscription` of `topic`, with every message it holds, so it
    /// stops collecting the topic: for a durable subscription nobody will consume again (a
    /// retired service, a renamed one). Deleting one that does not exist is not an error.
    /// While a consumer is attached it fails with [`Error::Broker`](crate::Error::Broker) and
    /// deletes nothing.
    ///
    /// The default, for a subscriber that cannot delete subscriptions, fails with
    /// [`Error::Broker`](crate::Error::Broker); every broker seedwork ships implements it.
    async fn unsubscribe(&self, topic: &str, subscription: &str) -> Result<()> {
        Err(crate::Error::broker(format!(
            "this broker cannot delete subscriptions (`{subscription}` on `{topic}`)"
        )))
    }
}

/// Receives the messages of one subscription (`consumidores`).
///
/// Every received delivery must be acknowledged, negatively acknowledged or rejected. A nacked delivery
/// comes back after the policy's backoff, to this or another consumer of the subscription,
/// until it has been delivered `max_deliveries` times; then it goes to the dead-letter topic.
/// Deliveries neither acked nor nacked when the consumer is dropped are redelivered.
#[async_trait]
pub trait Consumer: Send {
    /// Waits for the next delivery.
    async fn receive(&mut self) -> Result<Delivery>;

    /// A delivery this consumer already holds and can hand out at once, without waiting or
    /// asking the broker (one that a claim took together with the one `receive` returned), if
    /// any. It must be settled like any other. The default, for consumers that take one
    /// message at a time, is `None`. The bus's consume loop (in the application layer, above
    /// this one) uses it to handle the messages at hand in one unit of work.
    fn ready(&mut self) -> Option<Delivery> {
        None
    }

    /// Confirms the delivery was processed; it will not come back.
    async fn ack(&mut self, delivery: &Delivery) -> Result<()>;

    /// The acknowledgement of `deliveries` (all received from this consumer and not yet
    /// settled) as a [`TransactionalAck`] a store's transaction can carry, if this consumer's
    /// broker can be settled that way; `None` (the default) if not, or if one of them is not in
    /// hand.
    ///
    /// Nothing is settled yet: once the transaction that carried it has committed, call
    /// [`ack_committed`](Self::ack_committed) for each delivery. If the transaction rolled back
    /// or its store could not carry it, settle the deliveries the usual way.
    fn transactional_ack(&self, deliveries: &[&Delivery]) -> Option<TransactionalAck> {
        let _ = deliveries;
        None
    }

    /// The transaction that carried `delivery`'s [`transactional_ack`](Self::transactional_ack)
    /// has committed: the delivery is settled, and the consumer lets go of it without writing
    /// anything. The default acknowledges it (for a consumer whose `transactional_ack` is
    /// always `None`, this is never called by the bus).
    async fn ack_committed(&mut self, delivery: &Delivery) -> Result<()> {
        self.ack(delivery).await
    }

    /// Reports the delivery failed; it comes back later or goes to the dead-letter topic.
    async fn nack(&mut self, delivery: &Delivery) -> Result<()>;

    /// Gives up on the delivery at once, whatever its attempt count: the message goes to the
    /// dead-letter topic with `reason` as its [`REASON`](super::dead_letter::REASON) and will
    /// not come back. For a message that would fail however often it came back: the domain
    /// refused it, it does not decode.
    ///
    /// When the dead letter cannot be written, the delivery stays unsettled and the call fails;
    /// the message comes back as if the consumer had been dropped.
    async fn reject(&mut self, delivery: &Delivery, reason: &str) -> Result<()>;

    /// The options the consumer was created with.
    fn options(&self) -> &SubscriptionOptions;
}
