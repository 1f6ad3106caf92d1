//! The embedded broker.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::messaging::{
    Consumer, Delivery, Message, Publisher, Subscriber, SubscriptionKind, SubscriptionOptions,
};

/// Messages of a topic kept for [`MemoryBroker::published`]; older ones are forgotten.
const TOPIC_LOG_LIMIT: usize = 10_000;

/// Property added to a dead-lettered message: the topic it failed on.
pub const DEAD_LETTER_ORIGINAL_TOPIC: &str = "dlq_original_topic";
/// Property added to a dead-lettered message: the subscription that gave up on it.
pub const DEAD_LETTER_SUBSCRIPTION: &str = "dlq_subscription";

/// An in-process message broker with Pulsar's subscription model.
///
/// - Topics are created on first use. A subscription is created by its first consumer and is
///   durable: it keeps collecting messages while no consumer is attached. Messages published
///   before a subscription existed are not delivered to it; every subscription gets every
///   message published after.
/// - [`SubscriptionKind::Shared`] spreads messages over the attached consumers;
///   [`KeyShared`](SubscriptionKind::KeyShared) also keeps each key on one consumer while it stays
///   attached; [`Failover`](SubscriptionKind::Failover) delivers only to the earliest attached
///   consumer, the next one taking over when it goes; [`Exclusive`](SubscriptionKind::Exclusive)
///   refuses a second consumer.
/// - Order per key: in every kind, a message is not delivered while an earlier message with the
///   same key is in flight or waiting for its redelivery. Messages without a key are unordered.
/// - A nacked message comes back after the subscription's backoff; after `max_deliveries`
///   deliveries it is published to the dead-letter topic (unchanged, plus the
///   [`DEAD_LETTER_ORIGINAL_TOPIC`] and [`DEAD_LETTER_SUBSCRIPTION`] properties). Deliveries of a
///   dropped consumer return to the subscription at once.
///
/// Clones share the same broker.
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
        // Every critical section leaves the state consistent before it can panic, so a
        // poisoned lock still guards valid data.
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

struct Subscription {
    options: SubscriptionOptions,
    queue: BTreeMap<u64, Pending>,
    next_position: u64,
    consumers: Vec<u64>,
    key_owners: HashMap<String, u64>,
    notify: Arc<Notify>,
}

struct Pending {
    message: Message,
    deliveries: u32,
    state: PendingState,
}

enum PendingState {
    Ready { not_before: Option<Instant> },
    InFlight { consumer: u64, token: u64 },
}

impl fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("MemoryBroker")
            .field("topics", &state.topics.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Subscription {
    fn enqueue(&mut self, message: Message) {
        self.next_position += 1;
        self.queue.insert(
            self.next_position,
            Pending {
                message,
                deliveries: 0,
                state: PendingState::Ready { not_before: None },
            },
        );
        self.notify.notify_waiters();
    }

    /// The next delivery for `consumer`, or when to look again (`None` = when notified).
    fn next_for(&mut self, consumer: u64, token: u64, now: Instant) -> Next {
        let active = match self.options.kind {
            SubscriptionKind::Failover | SubscriptionKind::Exclusive => {
                self.consumers.first() == Some(&consumer)
            }
            SubscriptionKind::Shared | SubscriptionKind::KeyShared => true,
        };
        if !active {
            return Next::Wait(None);
        }
        let mut blocked: HashSet<&str> = HashSet::new();
        let mut wake_at: Option<Instant> = None;
        let mut chosen = None;
        for (position, pending) in &self.queue {
            let key = pending.message.key.as_deref();
            if key.is_some_and(|k| blocked.contains(k)) {
                continue;
            }
            let ready = match pending.state {
                PendingState::InFlight { .. } => false,
                PendingState::Ready { not_before } => match not_before {
                    Some(at) if at > now => {
                        wake_at = Some(wake_at.map_or(at, |w: Instant| w.min(at)));
                        false
                    }
                    _ => true,
                },
            };
            let owned_elsewhere = self.options.kind == SubscriptionKind::KeyShared
                && key.is_some_and(|k| {
                    self.key_owners
                        .get(k)
                        .is_some_and(|owner| *owner != consumer)
                });
            if ready && !owned_elsewhere {
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
        pending.deliveries += 1;
        pending.state = PendingState::InFlight { consumer, token };
        if self.options.kind == SubscriptionKind::KeyShared {
            if let Some(key) = &pending.message.key {
                self.key_owners.insert(key.clone(), consumer);
            }
        }
        Next::Deliver(Box::new(Delivery {
            message: pending.message.clone(),
            attempt: pending.deliveries,
            token,
        }))
    }

    fn find_in_flight(&self, consumer: u64, token: u64) -> Option<u64> {
        self.queue.iter().find_map(|(position, pending)| {
            matches!(pending.state, PendingState::InFlight { consumer: c, token: t } if c == consumer && t == token)
                .then_some(*position)
        })
    }

    fn detach(&mut self, consumer: u64) {
        self.consumers.retain(|c| *c != consumer);
        self.key_owners.retain(|_, owner| *owner != consumer);
        for pending in self.queue.values_mut() {
            if matches!(pending.state, PendingState::InFlight { consumer: c, .. } if c == consumer)
            {
                pending.state = PendingState::Ready { not_before: None };
            }
        }
        self.notify.notify_waiters();
    }
}

enum Next {
    Deliver(Box<Delivery>),
    Wait(Option<Instant>),
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

    fn subscription(&mut self, topic: &str, name: &str) -> Result<&mut Subscription> {
        self.topics
            .get_mut(topic)
            .and_then(|t| t.subscriptions.get_mut(name))
            .ok_or_else(|| Error::broker(format!("subscription `{name}` on `{topic}` is gone")))
    }
}

impl MemoryBroker {
    /// A broker with no topics.
    pub fn new() -> Self {
        MemoryBroker::default()
    }

    /// Every message published to `topic` (the latest 10 000), in order: for tests and
    /// diagnostics.
    pub fn published(&self, topic: &str) -> Vec<Message> {
        self.shared
            .lock()
            .topics
            .get(topic)
            .map(|t| t.log.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Messages of the subscription not yet acknowledged (waiting, in flight or in backoff).
    pub fn backlog(&self, topic: &str, subscription: &str) -> usize {
        self.shared
            .lock()
            .topics
            .get(topic)
            .and_then(|t| t.subscriptions.get(subscription))
            .map(|s| s.queue.len())
            .unwrap_or(0)
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
        state.next_consumer += 1;
        let id = state.next_consumer;
        let topic = state.topics.entry(options.topic.clone()).or_default();
        let subscription = topic
            .subscriptions
            .entry(options.subscription.clone())
            .or_insert_with(|| Subscription {
                options: options.clone(),
                queue: BTreeMap::new(),
                next_position: 0,
                consumers: Vec::new(),
                key_owners: HashMap::new(),
                notify: Arc::new(Notify::new()),
            });
        if !subscription.consumers.is_empty() {
            if subscription.options.kind == SubscriptionKind::Exclusive {
                return Err(Error::broker(format!(
                    "exclusive subscription `{}` on `{}` already has a consumer",
                    options.subscription, options.topic
                )));
            }
            if subscription.options.kind != options.kind {
                return Err(Error::broker(format!(
                    "subscription `{}` is {:?}; cannot attach a {:?} consumer",
                    options.subscription, subscription.options.kind, options.kind
                )));
            }
        } else {
            subscription.options = options.clone();
        }
        subscription.consumers.push(id);
        let notify = Arc::clone(&subscription.notify);
        Ok(Box::new(MemoryConsumer {
            shared: Arc::clone(&self.shared),
            id,
            options,
            notify,
        }))
    }
}

/// A consumer attached to a [`MemoryBroker`] subscription. Dropping it returns its unacked
/// deliveries to the subscription.
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
            .finish()
    }
}

#[async_trait]
impl Consumer for MemoryConsumer {
    async fn receive(&mut self) -> Result<Delivery> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next = {
                let mut state = self.shared.lock();
                state.next_token += 1;
                let token = state.next_token;
                let subscription =
                    state.subscription(&self.options.topic, &self.options.subscription)?;
                subscription.next_for(self.id, token, Instant::now())
            };
            match next {
                Next::Deliver(delivery) => return Ok(*delivery),
                Next::Wait(None) => notified.await,
                Next::Wait(Some(at)) => {
                    let _ = tokio::time::timeout_at(at, notified).await;
                }
            }
        }
    }

    async fn ack(&mut self, delivery: &Delivery) -> Result<()> {
        let mut state = self.shared.lock();
        let subscription = state.subscription(&self.options.topic, &self.options.subscription)?;
        let position = subscription
            .find_in_flight(self.id, delivery.token)
            .ok_or_else(|| unknown_delivery(delivery))?;
        subscription.queue.remove(&position);
        subscription.notify.notify_waiters();
        Ok(())
    }

    async fn nack(&mut self, delivery: &Delivery) -> Result<()> {
        let mut state = self.shared.lock();
        let subscription = state.subscription(&self.options.topic, &self.options.subscription)?;
        let position = subscription
            .find_in_flight(self.id, delivery.token)
            .ok_or_else(|| unknown_delivery(delivery))?;
        let retry = subscription.options.retry.clone();
        let dead_letter_topic = subscription.options.effective_dead_letter_topic();
        let mut dead = None;
        if let Some(pending) = subscription.queue.get_mut(&position) {
            if pending.deliveries >= retry.max_deliveries.max(1) {
                dead = subscription.queue.remove(&position).map(|p| p.message);
            } else {
                let backoff: Duration = retry.backoff(pending.deliveries);
                pending.state = PendingState::Ready {
                    not_before: Some(Instant::now() + backoff),
                };
            }
        }
        subscription.notify.notify_waiters();
        if let Some(mut message) = dead {
            tracing::warn!(
                message_id = %message.envelope.id,
                topic = %self.options.topic,
                subscription = %self.options.subscription,
                dead_letter_topic = %dead_letter_topic,
                "message dead-lettered after {} deliveries",
                retry.max_deliveries
            );
            message
                .properties
                .insert(DEAD_LETTER_ORIGINAL_TOPIC.into(), message.topic.clone());
            message.properties.insert(
                DEAD_LETTER_SUBSCRIPTION.into(),
                self.options.subscription.clone(),
            );
            message.topic = dead_letter_topic;
            state.publish(&message);
        }
        Ok(())
    }

    fn options(&self) -> &SubscriptionOptions {
        &self.options
    }
}

fn unknown_delivery(delivery: &Delivery) -> Error {
    Error::broker(format!(
        "delivery {} of message {} is not in flight for this consumer (already acked or nacked?)",
        delivery.token, delivery.message.envelope.id
    ))
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if let Ok(subscription) =
            state.subscription(&self.options.topic, &self.options.subscription)
        {
            subscription.detach(self.id);
        }
    }
}
