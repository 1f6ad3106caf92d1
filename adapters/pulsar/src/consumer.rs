//! [`PulsarConsumer`]: one subscription's consumer, with backoff, dead letters, per-key order
//! across redeliveries and a supervised connection.
//!
//! pulsar-rs redelivers a nacked message at once and does not tell how often a message was
//! delivered, so this consumer keeps that bookkeeping itself:
//!
//! - a nacked delivery waits in the consumer for the policy's backoff and comes back with
//!   `attempt + 1`; it stays unacknowledged on the broker meanwhile, so if this process dies the
//!   broker gives it to another consumer (counting from 1 again);
//! - while a key has a nacked message waiting, later messages of that key are held back, so a
//!   key's order survives a nack as on the embedded broker;
//! - after `max_deliveries` the message is re-published to the dead-letter topic with the same
//!   schema and its envelope in the properties (so it decodes there), plus seedwork's
//!   [`dead_letter`] properties (original topic, subscription, reason, deliveries), then
//!   acknowledged;
//! - a message that does not decode goes to the dead-letter topic at once (with the same
//!   properties, the reason saying why it did not decode) and the consumer goes on;
//! - when the underlying stream fails or ends, the consumer is rebuilt with growing pauses
//!   until the broker answers again; deliveries handed out before that can no longer be
//!   settled (the broker redelivers them).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use pulsar::consumer::{ConsumerOptions, InitialPosition};
use pulsar::{SubType, TokioExecutor};
use seedwork::messaging::{
    dead_letter, Consumer, Delivery, Message, SubscriptionKind, SubscriptionOptions,
};
use seedwork::Result;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::broker::Inner;
use crate::codec::{self, Received, TopicSchema, WireSchema};
use crate::error::{CodecError, PulsarError};

type RawMessage = pulsar::consumer::Message<Vec<u8>>;
type RawConsumer = pulsar::Consumer<Vec<u8>, TokioExecutor>;

const FIRST_RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// A decoded message waiting to be handed out, or handed out and not yet settled.
struct Pending {
    raw: RawMessage,
    message: Message,
    writer: Option<Arc<WireSchema>>,
    attempt: u32,
    /// Counted in `blocked` (it was nacked and its key waits for it).
    blocking: bool,
    generation: u64,
}

/// The consumer behind [`PulsarBroker::subscribe`](seedwork::messaging::Subscriber::subscribe).
pub struct PulsarConsumer {
    broker: Arc<Inner>,
    options: SubscriptionOptions,
    declared: TopicSchema,
    stream: Option<RawConsumer>,
    /// Bumped on every rebuild: deliveries of an earlier stream cannot be settled.
    generation: u64,
    next_token: u64,
    writer_schemas: HashMap<Vec<u8>, Option<Arc<WireSchema>>>,
    /// Received from the stream, not yet decoded (kept here so `receive` is cancel-safe).
    arrived: VecDeque<RawMessage>,
    in_flight: HashMap<u64, Pending>,
    /// Keys with nacked messages waiting, and how many.
    blocked: HashMap<String, usize>,
    /// Messages whose key was blocked when they arrived, in arrival order.
    held: VecDeque<Pending>,
    /// Messages released from `held`, to hand out before anything new.
    ready: VecDeque<Pending>,
    /// Nacked messages and when they are due again.
    retries: Vec<(Instant, Pending)>,
}

impl std::fmt::Debug for PulsarConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulsarConsumer")
            .field("options", &self.options)
            .field("in_flight", &self.in_flight.len())
            .field("retries", &self.retries.len())
            .finish_non_exhaustive()
    }
}

impl PulsarConsumer {
    pub(crate) async fn attach(broker: Arc<Inner>, options: SubscriptionOptions) -> Result<Self> {
        let declared = broker.schemas.for_topic(&options.topic);
        let stream = build(&broker, &options, &declared).await?;
        Ok(PulsarConsumer {
            broker,
            options,
            declared,
            stream: Some(stream),
            generation: 0,
            next_token: 0,
            writer_schemas: HashMap::new(),
            arrived: VecDeque::new(),
            in_flight: HashMap::new(),
            blocked: HashMap::new(),
            held: VecDeque::new(),
            ready: VecDeque::new(),
            retries: Vec::new(),
        })
    }

    fn hand_out(&mut self, pending: Pending) -> Delivery {
        self.next_token += 1;
        let delivery = Delivery {
            message: pending.message.clone(),
            attempt: pending.attempt,
            token: self.next_token,
        };
        self.in_flight.insert(self.next_token, pending);
        delivery
    }

    fn take(&mut self, delivery: &Delivery) -> Result<Pending> {
        let Some(pending) = self.in_flight.remove(&delivery.token) else {
            return Err(PulsarError::UnknownDelivery {
                token: delivery.token,
                message_id: delivery.message.id().to_string(),
            }
            .into());
        };
        if pending.generation != self.generation {
            return Err(PulsarError::StaleDelivery {
                message_id: delivery.message.id().to_string(),
            }
            .into());
        }
        Ok(pending)
    }

    fn unblock(&mut self, pending: &Pending) {
        if !pending.blocking {
            return;
        }
        let Some(key) = pending.message.key.as_deref() else {
            return;
        };
        if let Some(count) = self.blocked.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                self.blocked.remove(key);
                let (released, still_held): (VecDeque<_>, VecDeque<_>) =
                    std::mem::take(&mut self.held)
                        .into_iter()
                        .partition(|p| p.message.key.as_deref() == Some(key));
                self.held = still_held;
                self.ready.extend(released);
            }
        }
    }

    fn is_blocked(&self, message: &Message) -> bool {
        message
            .key
            .as_deref()
            .is_some_and(|key| self.blocked.contains_key(key))
    }

    fn stream(&mut self) -> std::result::Result<&mut RawConsumer, PulsarError> {
        self.stream
            .as_mut()
            .ok_or_else(|| PulsarError::Reconnecting {
                topic: self.options.topic.clone(),
            })
    }

    /// Forgets the stream and everything received through it: the broker redelivers all of it
    /// to the rebuilt consumer.
    fn lose_stream(&mut self, why: &dyn std::fmt::Display) {
        warn!(
            topic = %self.options.topic,
            subscription = %self.options.subscription,
            "consumer lost the broker ({why}); rebuilding it"
        );
        self.stream = None;
        self.arrived.clear();
        self.held.clear();
        self.ready.clear();
        self.retries.clear();
        self.blocked.clear();
    }

    async fn rebuild(&mut self) {
        let mut pause = FIRST_RECONNECT_PAUSE;
        loop {
            match build(&self.broker, &self.options, &self.declared).await {
                Ok(stream) => {
                    self.stream = Some(stream);
                    self.generation += 1;
                    debug!(topic = %self.options.topic, "consumer rebuilt");
                    return;
                }
                Err(error) => {
                    warn!(topic = %self.options.topic, "rebuilding the consumer failed: {error}");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(self.broker.settings.max_reconnect_backoff);
                }
            }
        }
    }

    /// The writer schema of a message's version, asked of the broker once per version.
    async fn writer_schema(
        &mut self,
        topic: &str,
        version: Option<Vec<u8>>,
    ) -> std::result::Result<Option<Arc<WireSchema>>, PulsarError> {
        let Some(version) = version else {
            return Ok(None);
        };
        if let Some(known) = self.writer_schemas.get(&version) {
            return Ok(known.clone());
        }
        let info = self
            .stream()?
            .get_schema(topic, Some(version.clone()))
            .await
            .map_err(|source| PulsarError::FetchSchema {
                topic: topic.to_string(),
                source,
            })?;
        let schema = match info {
            Some(info) => Some(Arc::new(
                WireSchema::from_info(info.r#type, &info.schema_data).map_err(|source| {
                    PulsarError::WriterSchema {
                        topic: topic.to_string(),
                        source,
                    }
                })?,
            )),
            None => None,
        };
        self.writer_schemas.insert(version, schema.clone());
        Ok(schema)
    }

    fn decode(
        &self,
        raw: &RawMessage,
        writer: Option<&WireSchema>,
    ) -> std::result::Result<Message, CodecError> {
        let metadata = &raw.payload.metadata;
        let id = &raw.message_id.id;
        let pulsar_id = format!(
            "{}:{}:{}:{}",
            id.ledger_id,
            id.entry_id,
            id.partition.unwrap_or(-1),
            id.batch_index.unwrap_or(-1)
        );
        let received = Received {
            topic: &raw.topic,
            payload: &raw.payload.data,
            properties: metadata
                .properties
                .iter()
                .map(|p| (p.key.clone(), p.value.clone()))
                .collect::<BTreeMap<_, _>>(),
            key: metadata.partition_key.clone(),
            producer_name: &metadata.producer_name,
            publish_time: metadata.publish_time,
            event_time: metadata.event_time.filter(|t| *t > 0),
            pulsar_id,
        };
        codec::decode(received, writer, &self.declared)
    }

    /// Decodes the oldest arrived message: `Some` when it can be handed out now.
    async fn process_arrived(&mut self) -> Result<Option<Pending>> {
        let Some(front) = self.arrived.front() else {
            return Ok(None);
        };
        let (topic, version) = (
            front.topic.clone(),
            front.payload.metadata.schema_version.clone(),
        );
        // Awaited while the message is still queued, so a cancelled `receive` loses nothing.
        let writer = match self.writer_schema(&topic, version).await {
            Ok(writer) => writer,
            Err(error) => {
                // The broker could not tell the schema: a broker problem, not a bad message.
                self.lose_stream(&error);
                return Ok(None);
            }
        };
        let raw = self.arrived.pop_front().expect("checked above");
        match self.decode(&raw, writer.as_deref()) {
            Ok(message) => {
                let pending = Pending {
                    raw,
                    message,
                    writer,
                    attempt: 1,
                    blocking: false,
                    generation: self.generation,
                };
                if self.is_blocked(&pending.message) {
                    self.held.push_back(pending);
                    Ok(None)
                } else {
                    Ok(Some(pending))
                }
            }
            Err(reason) => {
                warn!(
                    topic = %self.options.topic,
                    "message does not decode ({reason}); sending it to the dead-letter topic"
                );
                let properties = raw
                    .payload
                    .metadata
                    .properties
                    .iter()
                    .map(|p| (p.key.clone(), p.value.clone()))
                    .collect();
                let reason = format!("undecodable: {reason}");
                if let Err(error) = self.dead_letter(&raw, None, properties, &reason, 1).await {
                    self.arrived.push_front(raw);
                    return Err(error);
                }
                Ok(None)
            }
        }
    }

    /// Re-publishes `raw`'s payload to the dead-letter topic with `properties` and the
    /// [`dead_letter`] ones, and acknowledges the original.
    async fn dead_letter(
        &mut self,
        raw: &RawMessage,
        writer: Option<&WireSchema>,
        mut properties: std::collections::HashMap<String, String>,
        reason: &str,
        deliveries: u32,
    ) -> Result<()> {
        let topic = self.options.effective_dead_letter_topic();
        properties.insert(
            dead_letter::ORIGINAL_TOPIC.into(),
            self.options.topic.clone(),
        );
        properties.insert(
            dead_letter::SUBSCRIPTION.into(),
            self.options.subscription.clone(),
        );
        properties.insert(dead_letter::REASON.into(), reason.to_string());
        properties.insert(dead_letter::DELIVERIES.into(), deliveries.to_string());
        let message = pulsar::producer::Message {
            payload: raw.payload.data.clone(),
            properties,
            partition_key: raw.payload.metadata.partition_key.clone(),
            event_time: raw.payload.metadata.event_time,
            ..Default::default()
        };
        self.broker.send(&topic, writer, message).await?;
        self.stream()?.ack(raw).await.map_err(|source| {
            PulsarError::AckDeadLetter {
                topic: self.options.topic.clone(),
                source,
            }
            .into()
        })
    }

    fn next_due(&self) -> Option<(usize, Instant)> {
        self.retries
            .iter()
            .enumerate()
            .min_by_key(|(_, (due, _))| *due)
            .map(|(index, (due, _))| (index, *due))
    }
}

#[async_trait]
impl Consumer for PulsarConsumer {
    async fn receive(&mut self) -> Result<Delivery> {
        loop {
            if let Some((index, due)) = self.next_due() {
                if due <= Instant::now() {
                    let (_, pending) = self.retries.swap_remove(index);
                    return Ok(self.hand_out(pending));
                }
            }
            if let Some(pending) = self.ready.pop_front() {
                return Ok(self.hand_out(pending));
            }
            if !self.arrived.is_empty() {
                if let Some(pending) = self.process_arrived().await? {
                    return Ok(self.hand_out(pending));
                }
                continue;
            }
            if self.stream.is_none() {
                self.rebuild().await;
                continue;
            }
            let wake_at = self
                .next_due()
                .map(|(_, due)| due)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let stream = self.stream.as_mut().expect("checked above");
            tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(raw)) => self.arrived.push_back(raw),
                    Some(Err(error)) => self.lose_stream(&error),
                    None => self.lose_stream(&"the stream ended"),
                },
                _ = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    async fn ack(&mut self, delivery: &Delivery) -> Result<()> {
        let pending = self.take(delivery)?;
        self.unblock(&pending);
        self.stream()?.ack(&pending.raw).await.map_err(|source| {
            PulsarError::Ack {
                message_id: delivery.message.id().to_string(),
                source,
            }
            .into()
        })
    }

    async fn nack(&mut self, delivery: &Delivery) -> Result<()> {
        let mut pending = self.take(delivery)?;
        let policy = self.options.retry.clone();
        if pending.attempt >= policy.max_deliveries.max(1) {
            let properties = codec::wire_properties(&pending.message);
            let reason = format!(
                "nacked at its last allowed delivery (max_deliveries = {})",
                policy.max_deliveries.max(1)
            );
            let result = self
                .dead_letter(
                    &pending.raw,
                    pending.writer.as_deref(),
                    properties,
                    &reason,
                    pending.attempt,
                )
                .await;
            if result.is_err() {
                // Not dead-lettered: keep it for another try rather than losing it.
                pending.generation = self.generation;
                self.retries
                    .push((Instant::now() + policy.max_backoff, pending));
                return result;
            }
            self.unblock(&pending);
            return Ok(());
        }
        let backoff = policy.backoff(pending.attempt);
        pending.attempt += 1;
        if !pending.blocking {
            if let Some(key) = pending.message.key.clone() {
                *self.blocked.entry(key).or_default() += 1;
                pending.blocking = true;
            }
        }
        self.retries.push((Instant::now() + backoff, pending));
        Ok(())
    }

    fn options(&self) -> &SubscriptionOptions {
        &self.options
    }
}

async fn build(
    broker: &Inner,
    options: &SubscriptionOptions,
    declared: &TopicSchema,
) -> std::result::Result<RawConsumer, PulsarError> {
    let sub_type = match options.kind {
        SubscriptionKind::Shared => SubType::Shared,
        SubscriptionKind::KeyShared => SubType::KeyShared,
        SubscriptionKind::Failover => SubType::Failover,
        SubscriptionKind::Exclusive => SubType::Exclusive,
    };
    broker
        .client
        .consumer()
        .with_topic(&options.topic)
        .with_subscription(&options.subscription)
        .with_subscription_type(sub_type)
        .with_options(ConsumerOptions {
            schema: declared.wire().and_then(|w| w.to_proto()),
            initial_position: InitialPosition::Latest,
            durable: Some(true),
            ..Default::default()
        })
        .build::<Vec<u8>>()
        .await
        .map_err(|source| PulsarError::Subscribe {
            topic: options.topic.clone(),
            subscription: options.subscription.clone(),
            source,
        })
}
