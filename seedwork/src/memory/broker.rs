//! The embedded broker: [`MemoryBroker`] and its [`MemoryConsumer`].

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::messaging::{
    dead_letter, Consumer, Delivery, Message, Publisher, Subscriber, SubscriptionKind,
    SubscriptionOptions, SubscriptionRefused,
};

/// What the memory broker refuses, carried as the source of [`Error::Broker`].
#[derive(Debug, thiserror::Error)]
enum BrokerError {
    #[error(
        "delivery {token} of message {message_id} is not in flight at this consumer \
         (unknown, or already acked or nacked)"
    )]
    NotInFlight { token: u64, message_id: String },
    #[error("subscription `{subscription}` on topic `{topic}` does not exist")]
    NoSubscription { topic: String, subscription: String },
    #[error("exclusive subscription `{subscription}` on topic `{topic}` already has a consumer")]
    ExclusiveTaken { topic: String, subscription: String },
    #[error(
        "subscription `{subscription}` on topic `{topic}` is {existing:?}; \
         cannot attach a {requested:?} consumer"
    )]
    KindMismatch {
        topic: String,
        subscription: String,
        existing: SubscriptionKind,
        requested: SubscriptionKind,
    },
}

/// Messages of a topic kept for [`MemoryBroker::published`]; older ones are forgotten, so a
/// long-running process does not grow without bound.
const TOPIC_LOG_LIMIT: usize = 10_000;

/// An in-process message broker with Pulsar's subscription model.
///
/// It implements [`Publisher`] and [`Subscriber`], so an application and its tests run with no
/// external service; it passes the same contract suite (`seedwork::testing::contract::broker`) as a
/// real broker adapter. Clones share the same broker.
///
/// # Topics and subscriptions
///
/// - Topics are created on first use (publish or subscribe).
/// - A subscription is created by its first [`subscribe`](Subscriber::subscribe) and is
///   durable: it keeps collecting messages while no consumer is attached, and they are
///   delivered when one attaches again. Messages published before a subscription existed are
///   not delivered to it. Every subscription of a topic gets every message published after it
///   was created.
/// - A subscription made with [`durable(false)`](SubscriptionOptions::durable) is removed,
///   with what it had not delivered, when its last consumer is dropped; messages published
///   while none is attached are not kept for it. Attaching to a subscription with the other
///   durability fails with [`Error::Broker`].
/// - The subscription kind is fixed while consumers are attached: attaching a consumer of
///   another kind fails with [`Error::Broker`]. An idle subscription takes the kind of the next
///   consumer.
///
/// # Subscription kinds
///
/// - [`Shared`](SubscriptionKind::Shared) (the default) spreads messages over the attached
///   consumers; each message is in flight at one consumer at a time.
/// - [`KeyShared`](SubscriptionKind::KeyShared) also sends all messages of a key to the same
///   consumer while that consumer stays attached (the first consumer to receive a key owns
///   it; ownership ends when the consumer is dropped). The broker remembers one owner per key
///   seen, for as long as the owner stays attached.
/// - [`Failover`](SubscriptionKind::Failover) delivers only to the earliest attached consumer
///   still alive; when it is dropped, the next one takes over, starting with the dropped one's
///   unacknowledged messages.
/// - [`Exclusive`](SubscriptionKind::Exclusive) refuses a second consumer while one is
///   attached ([`Error::Broker`] naming the subscription).
///
/// # Order per key
///
/// In every kind, a message with key `K` is not delivered while an earlier message of the
/// subscription with key `K` is in flight (delivered, not yet acknowledged) or waiting for its
/// redelivery: a key's messages are processed one at a time, in publish order, even across
/// nacks. Other keys are not held back by it. Messages without a key have no ordering
/// constraint.
///
/// # Acknowledgement, redelivery and dead letters
///
/// - [`Delivery::attempt`] is 1 for the first delivery and grows by one with every
///   redelivery (after a nack, or after the consumer holding it was dropped).
/// - [`ack`](Consumer::ack) removes the message for good. Acknowledging (or nacking) a token that
///   is unknown, already settled or belongs to another consumer fails with
///   [`Error::Broker`].
/// - [`nack`](Consumer::nack) of a delivery whose `attempt` has reached the consumer's
///   `retry.max_deliveries` publishes the message to
///   [`effective_dead_letter_topic`](SubscriptionOptions::effective_dead_letter_topic),
///   unchanged but for its `topic` and the [`dead_letter`] properties (original topic,
///   subscription, reason, deliveries), and removes it from the subscription. Otherwise the message
///   keeps its place in the subscription and becomes available again after
///   [`retry.backoff(attempt)`](crate::messaging::RetryPolicy::backoff).
/// - Deliveries a [`MemoryConsumer`] still holds when it is dropped return to the
///   subscription at once.
///
/// [`receive`](Consumer::receive) waits (asynchronously, without polling) until a delivery is
/// available for the consumer; it is cancel-safe, so it can sit in a `tokio::select!`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> seedwork::Result<()> {
/// use seedwork::memory::MemoryBroker;
/// use seedwork::messaging::{Envelope, Message, Publisher, Subscriber, SubscriptionOptions};
///
/// let broker = MemoryBroker::new();
/// let mut consumer = broker.subscribe(SubscriptionOptions::new("orders", "billing")).await?;
/// let message = Message {
///     topic: "orders".into(),
///     key: Some("order-1".into()),
///     envelope: Envelope::new("OrderPlaced", "v1", "shop", serde_json::json!({"total": 3})),
///     properties: Default::default(),
/// };
/// broker.publish(&message).await?;
/// let delivery = consumer.receive().await?;
/// assert_eq!(delivery.message, message);
/// assert_eq!(delivery.attempt, 1);
/// consumer.ack(&delivery).await?;
/// assert_eq!(broker.backlog("orders", "billing"), 0);
/// assert_eq!(broker.published("orders").len(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct MemoryBroker {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent before anything in it can panic,
        // so a poisoned lock still guards valid data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
struct State {
    topics: HashMap<String, Topic>,
    next_consumer: u64,
    next_token: u64,
}

#[derive(Default)]
struct Topic {
    log: VecDeque<Message>,
    subscriptions: HashMap<String, Subscription>,
}

/// One subscription: its unacknowledged messages in publish order and who holds what.
struct Subscription {
    kind: SubscriptionKind,
    /// Whether it outlives its consumers (see [`SubscriptionOptions::durable`]).
    durable: bool,
    /// Unacknowledged messages by position (publish order).
    queue: BTreeMap<u64, Pending>,
    next_position: u64,
    /// Deliveries in flight: token → (consumer, position).
    in_flight: HashMap<u64, (u64, u64)>,
    /// Attached consumers, earliest first.
    consumers: Vec<u64>,
    /// KeyShared: the consumer each key sticks to.
    key_owners: HashMap<String, u64>,
    notify: Arc<Notify>,
}

struct Pending {
    message: Message,
    /// Times it has been handed out so far.
    deliveries: u32,
    /// `None` while in flight; otherwise when it may be delivered (`None` inside = now).
    ready: Option<Option<Instant>>,
}

/// What a consumer should do next.
enum Next {
    Deliver(Box<Delivery>),
    /// Nothing for it now; look again when notified or, if set, at that instant.
    Wait(Option<Instant>),
}

impl Subscription {
    fn new(kind: SubscriptionKind, durable: bool) -> Self {
        Subscription {
            kind,
            durable,
            queue: BTreeMap::new(),
            next_position: 0,
            in_flight: HashMap::new(),
            consumers: Vec::new(),
            key_owners: HashMap::new(),
            notify: Arc::new(Notify::new()),
        }
    }

    fn enqueue(&mut self, message: Message) {
        self.next_position += 1;
        self.queue.insert(
            self.next_position,
            Pending {
                message,
                deliveries: 0,
                ready: Some(None),
            },
        );
        self.notify.notify_waiters();
    }

    /// Hands the first deliverable message to `consumer`, or says when to look again.
    fn next_for(&mut self, consumer: u64, next_token: &mut u64, now: Instant) -> Next {
        let active = match self.kind {
            SubscriptionKind::Failover | SubscriptionKind::Exclusive => {
                self.consumers.first() == Some(&consumer)
            }
            SubscriptionKind::Shared | SubscriptionKind::KeyShared => true,
        };
        if !active {
            return Next::Wait(None);
        }
        // Keys with an earlier message that is in flight, backing off or owned by another
        // consumer: their later messages must wait.
        let mut blocked: HashSet<&str> = HashSet::new();
        let mut wake_at: Option<Instant> = None;
        let mut chosen = None;
        for (position, pending) in &self.queue {
            let key = pending.message.key.as_deref();
            if key.is_some_and(|k| blocked.contains(k)) {
                continue;
            }
            let ready_now = match pending.ready {
                None => false,
                Some(Some(at)) if at > now => {
                    wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
                    false
                }
                Some(_) => true,
            };
            let owned_elsewhere = self.kind == SubscriptionKind::KeyShared
                && key.is_some_and(|k| self.key_owners.get(k).is_some_and(|o| *o != consumer));
            if ready_now && !owned_elsewhere {
                chosen = Some(*position);
                break;
            }
            if let Some(key) = key {
                blocked.insert(key);
            }
        }
        let Some(position) = chosen else {
            return Next::Wait(wake_at);
        };
        let Some(pending) = self.queue.get_mut(&position) else {
            return Next::Wait(wake_at);
        };
        *next_token += 1;
        let token = *next_token;
        pending.deliveries = pending.deliveries.saturating_add(1);
        pending.ready = None;
        self.in_flight.insert(token, (consumer, position));
        if self.kind == SubscriptionKind::KeyShared {
            if let Some(key) = &pending.message.key {
                self.key_owners.entry(key.clone()).or_insert(consumer);
            }
        }
        Next::Deliver(Box::new(Delivery {
            message: pending.message.clone(),
            attempt: pending.deliveries,
            token,
        }))
    }

    /// Takes the delivery `token` out of flight, if `consumer` holds it; returns its position.
    fn settle(&mut self, consumer: u64, delivery: &Delivery) -> Result<u64> {
        match self.in_flight.get(&delivery.token) {
            Some(&(holder, position)) if holder == consumer => {
                self.in_flight.remove(&delivery.token);
                Ok(position)
            }
            _ => Err(Error::broker(BrokerError::NotInFlight {
                token: delivery.token,
                message_id: delivery.message.envelope.id.clone(),
            })),
        }
    }

    /// Removes `consumer`: its deliveries become available again at once, its keys are freed.
    fn detach(&mut self, consumer: u64) {
        self.consumers.retain(|c| *c != consumer);
        self.key_owners.retain(|_, owner| *owner != consumer);
        let queue = &mut self.queue;
        self.in_flight.retain(|_, (holder, position)| {
            if *holder != consumer {
                return true;
            }
            if let Some(pending) = queue.get_mut(position) {
                pending.ready = Some(None);
            }
            false
        });
        self.notify.notify_waiters();
    }
}

impl State {
    fn publish(&mut self, message: &Message) {
        let topic = self.topics.entry(message.topic.clone()).or_default();
        if topic.log.len() >= TOPIC_LOG_LIMIT {
            topic.log.pop_front();
        }
        topic.log.push_back(message.clone());
        for subscription in topic.subscriptions.values_mut() {
            subscription.enqueue(message.clone());
        }
    }

    fn subscription(&mut self, options: &SubscriptionOptions) -> Result<&mut Subscription> {
        self.topics
            .get_mut(&options.topic)
            .and_then(|t| t.subscriptions.get_mut(&options.subscription))
            .ok_or_else(|| {
                Error::broker(BrokerError::NoSubscription {
                    topic: options.topic.clone(),
                    subscription: options.subscription.clone(),
                })
            })
    }
}

impl MemoryBroker {
    /// A broker with no topics.
    pub fn new() -> Self {
        MemoryBroker::default()
    }

    /// Every message published to `topic`, in publish order, including dead letters sent to
    /// it; for tests and diagnostics. Only the latest 10 000 of a topic are kept. Empty for an
    /// unknown topic.
    pub fn published(&self, topic: &str) -> Vec<Message> {
        self.shared
            .lock()
            .topics
            .get(topic)
            .map(|t| t.log.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How many messages of `subscription` on `topic` are not yet acknowledged (waiting, in
    /// flight or backing off); 0 for an unknown topic or subscription. For tests and
    /// diagnostics.
    pub fn backlog(&self, topic: &str, subscription: &str) -> usize {
        self.shared
            .lock()
            .topics
            .get(topic)
            .and_then(|t| t.subscriptions.get(subscription))
            .map_or(0, |s| s.queue.len())
    }
}

impl fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        let mut topics: Vec<&String> = state.topics.keys().collect();
        topics.sort();
        f.debug_struct("MemoryBroker")
            .field("topics", &topics)
            .finish()
    }
}

#[async_trait]
impl Publisher for MemoryBroker {
    async fn publish(&self, message: &Message) -> Result<()> {
        self.shared.lock().publish(message);
        Ok(())
    }
}

#[async_trait]
impl Subscriber for MemoryBroker {
    async fn subscribe(&self, options: SubscriptionOptions) -> Result<Box<dyn Consumer>> {
        let mut state = self.shared.lock();
        let id = state.next_consumer + 1;
        let topic = state.topics.entry(options.topic.clone()).or_default();
        let subscription = topic
            .subscriptions
            .entry(options.subscription.clone())
            .or_insert_with(|| Subscription::new(options.kind, options.durable));
        if subscription.durable != options.durable {
            return Err(Error::broker(SubscriptionRefused::DurabilityMismatch {
                topic: options.topic.clone(),
                subscription: options.subscription.clone(),
                durable: subscription.durable,
            }));
        }
        if subscription.consumers.is_empty() {
            subscription.kind = options.kind;
        } else if subscription.kind == SubscriptionKind::Exclusive {
            return Err(Error::broker(BrokerError::ExclusiveTaken {
                topic: options.topic.clone(),
                subscription: options.subscription.clone(),
            }));
        } else if subscription.kind != options.kind {
            return Err(Error::broker(BrokerError::KindMismatch {
                topic: options.topic.clone(),
                subscription: options.subscription.clone(),
                existing: subscription.kind,
                requested: options.kind,
            }));
        }
        subscription.consumers.push(id);
        let notify = Arc::clone(&subscription.notify);
        state.next_consumer = id;
        Ok(Box::new(MemoryConsumer {
            shared: Arc::clone(&self.shared),
            id,
            options,
            notify,
        }))
    }

    async fn unsubscribe(&self, topic: &str, subscription: &str) -> Result<()> {
        let mut state = self.shared.lock();
        let Some(subscriptions) = state.topics.get_mut(topic).map(|t| &mut t.subscriptions) else {
            return Ok(());
        };
        match subscriptions.get(subscription) {
            None => Ok(()),
            Some(existing) if !existing.consumers.is_empty() => {
                Err(Error::broker(SubscriptionRefused::InUse {
                    topic: topic.to_string(),
                    subscription: subscription.to_string(),
                }))
            }
            Some(_) => {
                subscriptions.remove(subscription);
                Ok(())
            }
        }
    }
}

/// A consumer attached to a [`MemoryBroker`] subscription (what
/// [`MemoryBroker::subscribe`](Subscriber::subscribe) returns, boxed).
///
/// Dropping it detaches it: the deliveries it has neither acked nor nacked return to the
/// subscription at once, for the other consumers (or the next one to attach).
pub struct MemoryConsumer {
    shared: Arc<Shared>,
    id: u64,
    options: SubscriptionOptions,
    notify: Arc<Notify>,
}

impl fmt::Debug for MemoryConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryConsumer")
            .field("id", &self.id)
            .field("topic", &self.options.topic)
            .field("subscription", &self.options.subscription)
            .field("kind", &self.options.kind)
            .finish()
    }
}

#[async_trait]
impl Consumer for MemoryConsumer {
    async fn receive(&mut self) -> Result<Delivery> {
        loop {
            // Register for wake-ups before looking, so a publish in between is not missed.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next = {
                let mut state = self.shared.lock();
                let mut next_token = state.next_token;
                let next = state.subscription(&self.options)?.next_for(
                    self.id,
                    &mut next_token,
                    Instant::now(),
                );
                state.next_token = next_token;
                next
            };
            match next {
                Next::Deliver(delivery) => return Ok(*delivery),
                Next::Wait(None) => notified.await,
                Next::Wait(Some(at)) => {
                    // Either a wake-up or the end of a backoff: look again in both cases.
                    let _ = tokio::time::timeout_at(at, notified).await;
                }
            }
        }
    }

    async fn ack(&mut self, delivery: &Delivery) -> Result<()> {
        let mut state = self.shared.lock();
        let subscription = state.subscription(&self.options)?;
        let position = subscription.settle(self.id, delivery)?;
        subscription.queue.remove(&position);
        subscription.notify.notify_waiters();
        Ok(())
    }

    async fn nack(&mut self, delivery: &Delivery) -> Result<()> {
        let retry = &self.options.retry;
        let max_deliveries = retry.max_deliveries.max(1);
        let mut state = self.shared.lock();
        let subscription = state.subscription(&self.options)?;
        let position = subscription.settle(self.id, delivery)?;
        let mut dead = None;
        if let Some(pending) = subscription.queue.get_mut(&position) {
            if pending.deliveries >= max_deliveries {
                dead = subscription.queue.remove(&position);
            } else {
                pending.ready = Some(Some(Instant::now() + retry.backoff(pending.deliveries)));
            }
        }
        subscription.notify.notify_waiters();
        if let Some(pending) = dead {
            let reason =
                format!("nacked at its last allowed delivery (max_deliveries = {max_deliveries})");
            self.dead_letter(&mut state, pending, &reason);
        }
        Ok(())
    }

    async fn reject(&mut self, delivery: &Delivery, reason: &str) -> Result<()> {
        let mut state = self.shared.lock();
        let subscription = state.subscription(&self.options)?;
        let position = subscription.settle(self.id, delivery)?;
        let dead = subscription.queue.remove(&position);
        subscription.notify.notify_waiters();
        if let Some(pending) = dead {
            self.dead_letter(&mut state, pending, reason);
        }
        Ok(())
    }

    fn options(&self) -> &SubscriptionOptions {
        &self.options
    }
}

impl MemoryConsumer {
    /// Publishes a given-up message to the dead-letter topic with the [`dead_letter`]
    /// properties.
    fn dead_letter(&self, state: &mut State, pending: Pending, reason: &str) {
        let Pending {
            mut message,
            deliveries,
            ..
        } = pending;
        let dead_letter_topic = self.options.effective_dead_letter_topic();
        tracing::warn!(
            message_id = %message.envelope.id,
            topic = %self.options.topic,
            subscription = %self.options.subscription,
            dead_letter_topic = %dead_letter_topic,
            deliveries,
            reason,
            "message dead-lettered"
        );
        let original_topic = std::mem::replace(&mut message.topic, dead_letter_topic);
        let properties = &mut message.properties;
        properties.insert(dead_letter::ORIGINAL_TOPIC.into(), original_topic);
        properties.insert(
            dead_letter::SUBSCRIPTION.into(),
            self.options.subscription.clone(),
        );
        properties.insert(dead_letter::REASON.into(), reason.to_string());
        properties.insert(dead_letter::DELIVERIES.into(), deliveries.to_string());
        state.publish(&message);
    }
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        let Ok(subscription) = state.subscription(&self.options) else {
            return;
        };
        subscription.detach(self.id);
        if !subscription.durable && subscription.consumers.is_empty() {
            if let Some(topic) = state.topics.get_mut(&self.options.topic) {
                topic.subscriptions.remove(&self.options.subscription);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::messaging::{Envelope, RetryPolicy};

    fn message(topic: &str, n: u32, key: Option<&str>) -> Message {
        Message {
            topic: topic.into(),
            key: key.map(str::to_string),
            envelope: Envelope::new("Test", "v1", "unit", serde_json::json!({ "n": n })),
            properties: BTreeMap::new(),
        }
    }

    fn n_of(delivery: &Delivery) -> u64 {
        delivery.message.envelope.data["n"].as_u64().unwrap()
    }

    fn retry(max_deliveries: u32, backoff_ms: u64) -> RetryPolicy {
        RetryPolicy {
            max_deliveries,
            initial_backoff: Duration::from_millis(backoff_ms),
            max_backoff: Duration::from_secs(10),
            multiplier: 2,
        }
    }

    async fn receive_now(consumer: &mut dyn Consumer) -> Option<Delivery> {
        tokio::time::timeout(Duration::from_millis(50), consumer.receive())
            .await
            .ok()
            .map(|d| d.unwrap())
    }

    #[tokio::test]
    async fn a_non_durable_subscription_goes_with_its_last_consumer() {
        let broker = MemoryBroker::new();
        let live = || SubscriptionOptions::new("t", "feed").durable(false);
        let mut first = broker.subscribe(live()).await.unwrap();
        let second = broker.subscribe(live()).await.unwrap();
        broker.publish(&message("t", 1, None)).await.unwrap();
        let delivery = first.receive().await.unwrap();
        assert_eq!(n_of(&delivery), 1);
        // Held and unsettled when its consumer goes: the other consumer keeps the subscription.
        drop(first);
        assert_eq!(broker.backlog("t", "feed"), 1);
        drop(second);
        assert_eq!(broker.backlog("t", "feed"), 0, "removed with what it held");
        broker.publish(&message("t", 2, None)).await.unwrap();
        assert_eq!(
            broker.backlog("t", "feed"),
            0,
            "nothing kept while none is attached"
        );
        let mut again = broker.subscribe(live()).await.unwrap();
        assert!(receive_now(&mut *again).await.is_none());
        broker.publish(&message("t", 3, None)).await.unwrap();
        let delivery = again.receive().await.unwrap();
        assert_eq!(n_of(&delivery), 3);
        again.ack(&delivery).await.unwrap();
    }

    #[tokio::test]
    async fn durability_is_fixed_while_the_subscription_exists() {
        let broker = MemoryBroker::new();
        drop(
            broker
                .subscribe(SubscriptionOptions::new("t", "s"))
                .await
                .unwrap(),
        );
        let refused = broker
            .subscribe(SubscriptionOptions::new("t", "s").durable(false))
            .await
            .err()
            .expect("a durable subscription refuses a non-durable consumer");
        assert!(matches!(refused, Error::Broker(_)), "{refused:?}");
        assert!(refused.to_string().contains("is durable"), "{refused}");
        let _live = broker
            .subscribe(SubscriptionOptions::new("t", "l").durable(false))
            .await
            .unwrap();
        let refused = broker
            .subscribe(SubscriptionOptions::new("t", "l"))
            .await
            .err()
            .expect("a non-durable subscription refuses a durable consumer");
        assert!(refused.to_string().contains("is non-durable"), "{refused}");
    }

    #[tokio::test]
    async fn subscription_is_durable_while_no_consumer_is_attached() {
        let broker = MemoryBroker::new();
        drop(
            broker
                .subscribe(SubscriptionOptions::new("t", "s"))
                .await
                .unwrap(),
        );
        broker.publish(&message("t", 1, None)).await.unwrap();
        broker.publish(&message("t", 2, None)).await.unwrap();
        assert_eq!(broker.backlog("t", "s"), 2);
        let mut consumer = broker
            .subscribe(SubscriptionOptions::new("t", "s"))
            .await
            .unwrap();
        for n in 1..=2 {
            let delivery = consumer.receive().await.unwrap();
            assert_eq!(n_of(&delivery), n);
            consumer.ack(&delivery).await.unwrap();
        }
        assert_eq!(broker.backlog("t", "s"), 0);
        assert_eq!(broker.published("t").len(), 2);
        assert!(broker.published("unknown").is_empty());
        assert_eq!(broker.backlog("t", "unknown"), 0);
    }

    #[tokio::test]
    async fn a_dropped_delivery_counts_as_an_attempt() {
        let broker = MemoryBroker::new();
        let options = SubscriptionOptions::new("t", "s");
        let mut first = broker.subscribe(options.clone()).await.unwrap();
        broker.publish(&message("t", 1, None)).await.unwrap();
        assert_eq!(first.receive().await.unwrap().attempt, 1);
        drop(first);
        assert_eq!(broker.backlog("t", "s"), 1);
        let mut second = broker.subscribe(options).await.unwrap();
        let again = second.receive().await.unwrap();
        assert_eq!(again.attempt, 2);
        second.ack(&again).await.unwrap();
    }

    #[tokio::test]
    async fn settling_an_unknown_or_foreign_token_is_a_broker_error() {
        let broker = MemoryBroker::new();
        let options = SubscriptionOptions::new("t", "s");
        let mut a = broker.subscribe(options.clone()).await.unwrap();
        let mut b = broker.subscribe(options).await.unwrap();
        broker.publish(&message("t", 1, None)).await.unwrap();
        let delivery = a.receive().await.unwrap();
        assert!(matches!(b.ack(&delivery).await, Err(Error::Broker(_))));
        assert!(matches!(b.nack(&delivery).await, Err(Error::Broker(_))));
        let forged = Delivery {
            token: delivery.token + 1000,
            ..delivery.clone()
        };
        assert!(matches!(a.ack(&forged).await, Err(Error::Broker(_))));
        a.ack(&delivery).await.unwrap();
        assert!(matches!(a.ack(&delivery).await, Err(Error::Broker(_))));
        assert!(matches!(a.nack(&delivery).await, Err(Error::Broker(_))));
    }

    #[tokio::test]
    async fn exclusive_error_names_the_subscription_and_frees_on_drop() {
        let broker = MemoryBroker::new();
        let options = SubscriptionOptions::new("t", "solo").kind(SubscriptionKind::Exclusive);
        let first = broker.subscribe(options.clone()).await.unwrap();
        let Err(Error::Broker(error)) = broker.subscribe(options.clone()).await else {
            panic!("second exclusive consumer accepted");
        };
        assert!(error.to_string().contains("solo"), "{error}");
        drop(first);
        assert!(broker.subscribe(options).await.is_ok());
    }

    #[tokio::test]
    async fn a_consumer_of_another_kind_is_refused_while_one_is_attached() {
        let broker = MemoryBroker::new();
        let shared = SubscriptionOptions::new("t", "s");
        let first = broker.subscribe(shared.clone()).await.unwrap();
        let failover = shared.clone().kind(SubscriptionKind::Failover);
        assert!(matches!(
            broker.subscribe(failover.clone()).await,
            Err(Error::Broker(_))
        ));
        drop(first);
        assert!(broker.subscribe(failover).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_in_backoff_holds_back_only_its_own_messages() {
        let broker = MemoryBroker::new();
        let mut consumer = broker
            .subscribe(SubscriptionOptions::new("t", "s").retry(retry(5, 1000)))
            .await
            .unwrap();
        broker.publish(&message("t", 0, Some("a"))).await.unwrap();
        broker.publish(&message("t", 1, Some("b"))).await.unwrap();
        broker.publish(&message("t", 2, Some("a"))).await.unwrap();
        broker.publish(&message("t", 3, None)).await.unwrap();
        let a0 = consumer.receive().await.unwrap();
        assert_eq!(n_of(&a0), 0);
        consumer.nack(&a0).await.unwrap();
        let started = Instant::now();
        // b and the unkeyed message flow; a's second message waits for a's first.
        let mut order = Vec::new();
        for _ in 0..4 {
            let delivery = consumer.receive().await.unwrap();
            order.push((n_of(&delivery), delivery.attempt, started.elapsed()));
            consumer.ack(&delivery).await.unwrap();
        }
        let ns: Vec<_> = order.iter().map(|(n, a, _)| (*n, *a)).collect();
        assert_eq!(ns, vec![(1, 1), (3, 1), (0, 2), (2, 1)]);
        assert!(order[1].2 < Duration::from_millis(1000));
        assert!(order[2].2 >= Duration::from_millis(1000));
    }

    #[tokio::test]
    async fn an_in_flight_key_is_not_handed_to_another_shared_consumer() {
        let broker = MemoryBroker::new();
        let options = SubscriptionOptions::new("t", "s");
        let mut a = broker.subscribe(options.clone()).await.unwrap();
        let mut b = broker.subscribe(options).await.unwrap();
        broker.publish(&message("t", 0, Some("k"))).await.unwrap();
        broker.publish(&message("t", 1, Some("k"))).await.unwrap();
        let first = a.receive().await.unwrap();
        assert!(receive_now(&mut *b).await.is_none(), "k is in flight at a");
        a.ack(&first).await.unwrap();
        let second = receive_now(&mut *b).await.expect("k is free again");
        assert_eq!(n_of(&second), 1);
        b.ack(&second).await.unwrap();
    }

    #[tokio::test]
    async fn key_shared_keeps_keys_sticky_until_the_owner_goes() {
        let broker = MemoryBroker::new();
        let options = SubscriptionOptions::new("t", "s").kind(SubscriptionKind::KeyShared);
        let mut a = broker.subscribe(options.clone()).await.unwrap();
        let mut b = broker.subscribe(options).await.unwrap();
        broker.publish(&message("t", 0, Some("x"))).await.unwrap();
        let x0 = a.receive().await.unwrap();
        a.ack(&x0).await.unwrap();
        broker.publish(&message("t", 1, Some("x"))).await.unwrap();
        broker.publish(&message("t", 2, Some("y"))).await.unwrap();
        // x belongs to a even though nothing of x is in flight; b gets y.
        let y = receive_now(&mut *b).await.expect("y for b");
        assert_eq!(n_of(&y), 2);
        assert!(receive_now(&mut *b).await.is_none(), "x stays with a");
        b.ack(&y).await.unwrap();
        drop(a);
        let x1 = receive_now(&mut *b)
            .await
            .expect("x moves to b once a is gone");
        assert_eq!(n_of(&x1), 1);
        b.ack(&x1).await.unwrap();
    }

    #[tokio::test]
    async fn failover_standby_inherits_the_unacked_deliveries() {
        let broker = MemoryBroker::new();
        let options = SubscriptionOptions::new("t", "s").kind(SubscriptionKind::Failover);
        let mut active = broker.subscribe(options.clone()).await.unwrap();
        let mut standby = broker.subscribe(options).await.unwrap();
        broker.publish(&message("t", 0, None)).await.unwrap();
        broker.publish(&message("t", 1, None)).await.unwrap();
        let held = active.receive().await.unwrap();
        assert_eq!(n_of(&held), 0);
        assert!(receive_now(&mut *standby).await.is_none());
        drop(active);
        let again = receive_now(&mut *standby).await.expect("handed over");
        assert_eq!((n_of(&again), again.attempt), (0, 2));
        standby.ack(&again).await.unwrap();
        let next = receive_now(&mut *standby).await.expect("the rest follows");
        assert_eq!(n_of(&next), 1);
        standby.ack(&next).await.unwrap();
    }

    #[tokio::test]
    async fn dead_letters_go_to_the_default_topic_with_their_origin() {
        let broker = MemoryBroker::new();
        let options = SubscriptionOptions::new("t", "s").retry(retry(1, 10));
        let mut dead_letters = broker
            .subscribe(SubscriptionOptions::new(
                options.effective_dead_letter_topic(),
                "inspect",
            ))
            .await
            .unwrap();
        let mut consumer = broker.subscribe(options).await.unwrap();
        let sent = message("t", 1, Some("k"));
        broker.publish(&sent).await.unwrap();
        let delivery = consumer.receive().await.unwrap();
        consumer.nack(&delivery).await.unwrap();
        assert_eq!(broker.backlog("t", "s"), 0);
        let dead = dead_letters.receive().await.unwrap();
        assert_eq!(dead.message.topic, "t-s-DLQ");
        assert_eq!(dead.message.envelope, sent.envelope);
        assert_eq!(dead.message.key, sent.key);
        assert_eq!(dead.message.properties[dead_letter::ORIGINAL_TOPIC], "t");
        assert_eq!(dead.message.properties[dead_letter::SUBSCRIPTION], "s");
        assert_eq!(
            dead.message.properties[dead_letter::REASON],
            "nacked at its last allowed delivery (max_deliveries = 1)"
        );
        assert_eq!(dead.message.properties[dead_letter::DELIVERIES], "1");
        assert_eq!(broker.published("t-s-DLQ").len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_grows_with_each_nack() {
        let broker = MemoryBroker::new();
        let mut consumer = broker
            .subscribe(SubscriptionOptions::new("t", "s").retry(retry(4, 100)))
            .await
            .unwrap();
        broker.publish(&message("t", 1, None)).await.unwrap();
        let mut delivery = consumer.receive().await.unwrap();
        for expected in [100, 200, 400] {
            let nacked = Instant::now();
            consumer.nack(&delivery).await.unwrap();
            delivery = consumer.receive().await.unwrap();
            let waited = nacked.elapsed();
            assert!(waited >= Duration::from_millis(expected), "{waited:?}");
            assert!(waited < Duration::from_millis(expected + 50), "{waited:?}");
        }
        assert_eq!(delivery.attempt, 4);
        consumer.nack(&delivery).await.unwrap();
        assert_eq!(broker.backlog("t", "s"), 0);
        assert_eq!(broker.published("t-s-DLQ").len(), 1);
    }

    #[tokio::test]
    async fn receive_is_cancel_safe_and_wakes_on_publish() {
        let broker = MemoryBroker::new();
        let mut consumer = broker
            .subscribe(SubscriptionOptions::new("t", "s"))
            .await
            .unwrap();
        assert!(receive_now(&mut *consumer).await.is_none());
        let publisher = broker.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            publisher.publish(&message("t", 5, None)).await.unwrap();
        });
        let delivery = tokio::time::timeout(Duration::from_secs(5), consumer.receive())
            .await
            .expect("woken by the publish")
            .unwrap();
        assert_eq!((n_of(&delivery), delivery.attempt), (5, 1));
        consumer.ack(&delivery).await.unwrap();
        task.await.unwrap();
    }
}
