//! [`PulsarConsumer`]: one subscription's consumer, with backoff, dead letters, per-key order
//! across redeliveries and a supervised connection.
//!
//! pulsar-rs redelivers a nacked message at once and does not tell how often a message was
//! delivered, so this consumer keeps that bookkeeping itself:
//!
//! - a nacked delivery waits in the consumer for the policy's backoff and comes back with
//!   `attempt + 1`; it stays unacknowledged on the broker meanwhile, so if this process dies the
//!   broker gives it to another consumer (counting from 1 again);
//! - while a key has a message handed out and not yet settled, or one waiting for its
//!   redelivery, later messages of that key are held back, so a key's messages are processed
//!   one at a time and in order, even across nacks, as on the embedded broker (the bookkeeping
//!   is [`KeyOrder`]'s);
//! - after `max_deliveries` the message is re-published to the dead-letter topic with the same
//!   schema and its envelope in the properties (so it decodes there), plus seedwork's
//!   [`dead_letter`] properties (original topic, subscription, reason, deliveries), then
//!   acknowledged;
//! - a message that does not decode goes to the dead-letter topic at once (with the same
//!   properties, the reason saying why it did not decode) and the consumer goes on;
//! - when the underlying stream fails or ends, the consumer is rebuilt with growing pauses
//!   until the broker answers again; deliveries handed out before that can no longer be
//!   settled (the broker redelivers them);
//! - a message that came in a batch (several messages in one broker entry) is acknowledged to
//!   the broker only once every message of its entry is settled (acked or dead-lettered): the
//!   broker acknowledges whole entries, so acking the first one would lose the others if the
//!   process then died. The bookkeeping is [`BatchAcks`]'s. Until then the entry stays
//!   unacknowledged on the broker, and a consumer that loses the broker gets it back whole:
//!   the messages already handled come again, and the application's inbox recognises them
//!   (their ids are the envelope's, or `ledger:entry:partition:batch_index`, the same on every
//!   delivery).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{FutureExt, StreamExt};
use pulsar::consumer::{ConsumerOptions, InitialPosition};
use pulsar::{SubType, TokioExecutor};
use seedwork::messaging::{
    dead_letter, Consumer, Delivery, Message, SubscriptionKind, SubscriptionOptions,
};
use seedwork::Result;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::codec::{self, Received, TopicSchema, WireSchema};
use crate::connection::Inner;
use crate::error::{CodecError, PulsarError};

type RawMessage = pulsar::consumer::Message<Vec<u8>>;
type RawConsumer = pulsar::Consumer<Vec<u8>, TokioExecutor>;

const FIRST_RECONNECT_PAUSE: Duration = Duration::from_millis(100);
/// How often a consumer at its held-back bound with nothing due looks again.
const HELD_BACK_RECHECK: Duration = Duration::from_millis(100);

/// A decoded message waiting to be handed out, or handed out and not yet settled.
struct Pending {
    raw: RawMessage,
    message: Message,
    writer: Option<Arc<WireSchema>>,
    attempt: u32,
    generation: u64,
}

impl Keyed for Pending {
    fn key(&self) -> Option<&str> {
        self.message.key.as_deref()
    }
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
    /// Decoded messages waiting to be handed out, nacked ones waiting for their backoff, and
    /// the keys with a message unsettled.
    order: KeyOrder<Pending>,
    /// Batched entries received through the current stream with messages unsettled.
    batches: BatchAcks,
}

impl std::fmt::Debug for PulsarConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulsarConsumer")
            .field("options", &self.options)
            .field("in_flight", &self.in_flight.len())
            .field("waiting", &self.order.waiting.len())
            .field("retries", &self.order.retries.len())
            .field("open_batches", &self.batches.open.len())
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
            order: KeyOrder::default(),
            batches: BatchAcks::default(),
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
        self.order.clear();
        // The broker redelivers unacknowledged entries whole: their tracking starts afresh.
        self.batches.clear();
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

    /// Queues a decoded message for its first delivery, behind its key's earlier ones.
    fn admit(&mut self, raw: RawMessage, message: Message, writer: Option<Arc<WireSchema>>) {
        self.order.arrive(Pending {
            raw,
            message,
            writer,
            attempt: 1,
            generation: self.generation,
        });
    }

    /// Decodes the oldest arrived message into `order` (or dead-letters it if it does not
    /// decode).
    async fn process_arrived(&mut self) -> Result<()> {
        let Some(front) = self.arrived.front() else {
            return Ok(());
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
                return Ok(());
            }
        };
        let raw = self.arrived.pop_front().expect("checked above");
        self.batches.arrive(&Position::of(&raw));
        match self.decode(&raw, writer.as_deref()) {
            Ok(message) => {
                self.admit(raw, message, writer);
                Ok(())
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
                    // Decoded again when it comes round; its entry is still tracked.
                    self.arrived.push_front(raw);
                    return Err(error);
                }
                Ok(())
            }
        }
    }

    /// Dead-letters a handed-out message with `reason`. When that fails the message is kept
    /// for another try after the policy's longest backoff rather than lost; its key stays
    /// blocked meanwhile, so later messages of the key do not overtake it.
    async fn give_up(&mut self, mut pending: Pending, reason: &str) -> Result<()> {
        let properties = codec::wire_properties(&pending.message);
        let result = self
            .dead_letter(
                &pending.raw,
                pending.writer.as_deref(),
                properties,
                reason,
                pending.attempt,
            )
            .await;
        if result.is_err() {
            pending.generation = self.generation;
            let retry_at = Instant::now() + self.options.retry.max_backoff;
            self.order.requeue(pending, retry_at);
            return result;
        }
        self.order.finish(&pending);
        Ok(())
    }

    /// Re-publishes `raw`'s payload to the dead-letter topic with `properties` and the
    /// [`dead_letter`] ones, and settles the original (acknowledging its entry once all of the
    /// entry's messages are settled).
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
        self.stream()?;
        if !self.batches.settle(&Position::of(raw)) {
            // Other messages of its entry are not settled yet: the entry is acknowledged with
            // the last of them.
            return Ok(());
        }
        self.stream()?.ack(raw).await.map_err(|source| {
            PulsarError::AckDeadLetter {
                topic: self.options.topic.clone(),
                source,
            }
            .into()
        })
    }
}

#[async_trait]
impl Consumer for PulsarConsumer {
    async fn receive(&mut self) -> Result<Delivery> {
        loop {
            if let Some(pending) = self.order.next(Instant::now()) {
                return Ok(self.hand_out(pending));
            }
            if !self.arrived.is_empty() {
                self.process_arrived().await?;
                continue;
            }
            if self.stream.is_none() {
                self.rebuild().await;
                continue;
            }
            let wake_at = self
                .order
                .next_due()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            if self.order.held() >= self.broker.settings.max_held_back {
                // At the bound: read nothing more until a backoff ends (or, if every held
                // message waits behind one handed out, look again shortly; the caller settles
                // deliveries between calls).
                let until = wake_at.min(Instant::now() + HELD_BACK_RECHECK);
                tokio::time::sleep_until(until).await;
                continue;
            }
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

    /// A message already due, or one the client has already received from the broker and
    /// whose writer schema is known, decoded without waiting. What needs the broker (a schema
    /// not seen yet, a message that does not decode and goes to the dead-letter topic, a lost
    /// stream) is left to [`receive`](Consumer::receive).
    fn ready(&mut self) -> Option<Delivery> {
        loop {
            if let Some(pending) = self.order.next(Instant::now()) {
                return Some(self.hand_out(pending));
            }
            if !self.arrived.is_empty() || self.order.held() >= self.broker.settings.max_held_back {
                return None;
            }
            let raw = match self.stream.as_mut()?.next().now_or_never()? {
                Some(Ok(raw)) => raw,
                // Left for `receive`, which sees the same failure and rebuilds the stream.
                Some(Err(error)) => {
                    self.lose_stream(&error);
                    return None;
                }
                None => {
                    self.lose_stream(&"the stream ended");
                    return None;
                }
            };
            let writer = match &raw.payload.metadata.schema_version {
                None => None,
                Some(version) => match self.writer_schemas.get(version) {
                    Some(known) => known.clone(),
                    None => {
                        self.arrived.push_back(raw);
                        return None;
                    }
                },
            };
            match self.decode(&raw, writer.as_deref()) {
                Ok(message) => {
                    self.batches.arrive(&Position::of(&raw));
                    self.admit(raw, message, writer);
                }
                Err(_) => {
                    self.arrived.push_back(raw);
                    return None;
                }
            }
        }
    }

    async fn ack(&mut self, delivery: &Delivery) -> Result<()> {
        let pending = self.take(delivery)?;
        self.order.finish(&pending);
        self.stream()?;
        if !self.batches.settle(&Position::of(&pending.raw)) {
            // Other messages of its entry are not settled yet: the entry is acknowledged with
            // the last of them.
            return Ok(());
        }
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
            let reason = format!(
                "nacked at its last allowed delivery (max_deliveries = {})",
                policy.max_deliveries.max(1)
            );
            return self.give_up(pending, &reason).await;
        }
        let backoff = policy.backoff(pending.attempt);
        pending.attempt += 1;
        self.order.back_off(pending, Instant::now() + backoff);
        Ok(())
    }

    async fn reject(&mut self, delivery: &Delivery, reason: &str) -> Result<()> {
        let pending = self.take(delivery)?;
        self.give_up(pending, reason).await
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
        .consuming
        .consumer()
        .with_topic(&options.topic)
        .with_subscription(&options.subscription)
        .with_subscription_type(sub_type)
        // The flow permits the client grants the broker: with the receiver queue, what bounds
        // how far ahead of the held-back messages the broker may dispatch.
        .with_batch_size(u32::try_from(broker.settings.max_held_back).unwrap_or(u32::MAX))
        .with_options(ConsumerOptions {
            schema: declared.wire().and_then(|w| w.to_proto()),
            initial_position: InitialPosition::Latest,
            // A non-durable cursor lives in the broker's memory while a consumer is attached;
            // one rebuilt after losing the broker starts again at the end of the topic.
            durable: Some(options.durable),
            receiver_queue_size: Some(
                u32::try_from(broker.settings.max_held_back).unwrap_or(u32::MAX),
            ),
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

/// Deletes `subscription` of `topic` on the broker: a consumer attached for the purpose asks
/// for it (the binary protocol has no other way), and the broker refuses while other consumers
/// are attached. A subscription that did not exist is created by that attach and deleted with
/// it, so deleting one that does not exist succeeds.
pub(crate) async fn unsubscribe(
    broker: &Inner,
    topic: &str,
    subscription: &str,
) -> std::result::Result<(), PulsarError> {
    let options = SubscriptionOptions::new(topic, subscription);
    let declared = broker.schemas.for_topic(topic);
    let mut consumer = build(broker, &options, &declared).await?;
    consumer
        .unsubscribe()
        .await
        .map_err(|source| PulsarError::Unsubscribe {
            topic: topic.to_string(),
            subscription: subscription.to_string(),
            source,
        })
}

/// Where a received message sits on the broker: its entry, and how many messages the entry
/// holds and which one it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    entry: EntryId,
    /// The messages in the entry (1 for a message sent unbatched).
    batch_size: u32,
    /// This message's index in its entry (0 for a message sent unbatched).
    batch_index: u32,
}

/// A broker entry: what the broker stores and acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct EntryId {
    ledger: u64,
    entry: u64,
    partition: i32,
}

impl Position {
    fn of(raw: &RawMessage) -> Self {
        let id = &raw.message_id.id;
        // pulsar-rs copies the entry's metadata, `num_messages_in_batch` included, to each
        // message it unpacks from a batch; an unbatched entry has none.
        let batch_size = raw
            .payload
            .metadata
            .num_messages_in_batch
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1)
            .max(1);
        Position {
            entry: EntryId {
                ledger: id.ledger_id,
                entry: id.entry_id,
                partition: id.partition.unwrap_or(-1),
            },
            batch_size,
            batch_index: id
                .batch_index
                .and_then(|i| u32::try_from(i).ok())
                .unwrap_or(0),
        }
    }

    fn is_batched(&self) -> bool {
        self.batch_size > 1
    }
}

/// Which messages of each batched entry are settled, so the entry is acknowledged to the
/// broker only with its last one — what the Java client calls batch-ack tracking.
///
/// The broker acknowledges by entry (this consumer sends no per-message ack sets), so acking
/// any one message of a batch would acknowledge all of them, including those still in
/// backoff or not yet handled, and they would be lost if the process died. A nack is settled
/// nowhere: the message stays in the consumer for its next attempt and its entry stays open.
///
/// Bounded: an entry is tracked from the arrival of its messages until the last is settled
/// (then forgotten), and everything is forgotten when the stream is lost, since the broker then
/// redelivers the open entries whole to the rebuilt consumer, where tracking starts afresh. So
/// at most the entries with a message received and unsettled are tracked, which
/// `max_held_back` and the handed-out deliveries bound.
#[derive(Debug, Default)]
struct BatchAcks {
    /// Open batched entries: the size and which indexes are settled.
    open: HashMap<EntryId, OpenEntry>,
}

#[derive(Debug)]
struct OpenEntry {
    size: u32,
    /// One flag per message of the entry; settling twice counts once.
    settled: Vec<bool>,
    remaining: u32,
}

impl BatchAcks {
    /// A message was received: a batched entry is tracked from its first message on.
    fn arrive(&mut self, position: &Position) {
        if !position.is_batched() {
            return;
        }
        self.open
            .entry(position.entry)
            .or_insert_with(|| OpenEntry {
                size: position.batch_size,
                settled: vec![false; position.batch_size as usize],
                remaining: position.batch_size,
            });
    }

    /// A message was settled for good (acknowledged or dead-lettered). True when its entry is
    /// to be acknowledged to the broker now: an unbatched message, the last unsettled message
    /// of its entry, or a message of an entry not tracked (already acknowledged, so a second
    /// acknowledgement changes nothing on the broker).
    fn settle(&mut self, position: &Position) -> bool {
        if !position.is_batched() {
            return true;
        }
        let Some(open) = self.open.get_mut(&position.entry) else {
            return true;
        };
        let index = position.batch_index as usize;
        if index >= open.settled.len() || open.size != position.batch_size {
            // Not the entry we track (a broker would not do that). Acking could lose the
            // entry's other messages; leaving it open only costs a redelivery after the next
            // reconnection.
            warn!(
                ?position,
                "a batched message does not match its entry's tracking"
            );
            return false;
        }
        if !std::mem::replace(&mut open.settled[index], true) {
            open.remaining -= 1;
        }
        if open.remaining == 0 {
            self.open.remove(&position.entry);
            true
        } else {
            false
        }
    }

    /// Forgets every entry (the stream was lost).
    fn clear(&mut self) {
        self.open.clear();
    }
}

/// What [`KeyOrder`] needs to know of a message.
trait Keyed {
    fn key(&self) -> Option<&str>;
}

/// The consumer's per-key order bookkeeping, without I/O: which decoded messages wait to be
/// handed out, which nacked ones wait for their backoff, and which keys have a message
/// unsettled.
///
/// A keyed message is *unsettled* from the moment [`next`](Self::next) hands it out until
/// [`finish`](Self::finish): while handed out, while waiting out a backoff after a nack, and
/// while waiting for another try after a failed dead-letter publish
/// ([`back_off`](Self::back_off), [`requeue`](Self::requeue)). While a key has a message unsettled, `next` hands
/// out no other message of that key, so a key's messages are processed one at a time, in
/// arrival order. Messages without a key have no ordering constraint.
#[derive(Debug)]
struct KeyOrder<T> {
    /// Keys with messages unsettled (handed out or in `retries`), and how many.
    busy: HashMap<String, usize>,
    /// Messages not handed out yet, in arrival order.
    waiting: VecDeque<T>,
    /// Unsettled messages to hand out again (nacked or requeued), and when.
    retries: Vec<(Instant, T)>,
}

impl<T> Default for KeyOrder<T> {
    fn default() -> Self {
        KeyOrder {
            busy: HashMap::new(),
            waiting: VecDeque::new(),
            retries: Vec::new(),
        }
    }
}

impl<T: Keyed> KeyOrder<T> {
    /// Queues a newly arrived message behind everything that arrived before it.
    fn arrive(&mut self, item: T) {
        self.waiting.push_back(item);
    }

    /// The message to hand out now, if any: a retry that is due (its key is already
    /// unsettled: it is that key's oldest message), else the oldest waiting message whose key
    /// has nothing unsettled. A message taken from the waiting ones makes its key unsettled.
    fn next(&mut self, now: Instant) -> Option<T> {
        if let Some(index) = self
            .retries
            .iter()
            .enumerate()
            .filter(|(_, (due, _))| *due <= now)
            .min_by_key(|(_, (due, _))| *due)
            .map(|(index, _)| index)
        {
            return Some(self.retries.swap_remove(index).1);
        }
        let index = self
            .waiting
            .iter()
            .position(|item| item.key().is_none_or(|key| !self.busy.contains_key(key)))?;
        let item = self.waiting.remove(index)?;
        if let Some(key) = item.key() {
            *self.busy.entry(key.to_string()).or_default() += 1;
        }
        Some(item)
    }

    /// Takes back a nacked message to hand out again at `due`; its key stays unsettled
    /// meanwhile.
    fn back_off(&mut self, item: T, due: Instant) {
        self.retries.push((due, item));
    }

    /// Takes back a message whose dead-letter publish failed, to try again at `due`. Like
    /// [`back_off`](Self::back_off), its key stays unsettled meanwhile: later messages of the
    /// key must not overtake it.
    fn requeue(&mut self, item: T, due: Instant) {
        self.back_off(item, due);
    }

    /// A handed-out message was settled for good (acknowledged or dead-lettered): its key's
    /// next message may be handed out.
    fn finish(&mut self, item: &T) {
        let Some(key) = item.key() else {
            return;
        };
        if let Some(count) = self.busy.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                self.busy.remove(key);
            }
        }
    }

    /// How many messages are received and not handed out: waiting behind their key, or
    /// waiting out a backoff.
    fn held(&self) -> usize {
        self.waiting.len() + self.retries.len()
    }

    /// When the earliest retry is due.
    fn next_due(&self) -> Option<Instant> {
        self.retries.iter().map(|(due, _)| *due).min()
    }

    /// Forgets everything (the stream was lost: the broker redelivers all of it).
    fn clear(&mut self) {
        self.busy.clear();
        self.waiting.clear();
        self.retries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Item(&'static str, Option<&'static str>);

    impl Keyed for Item {
        fn key(&self) -> Option<&str> {
            self.1
        }
    }

    fn a(name: &'static str) -> Item {
        Item(name, Some("a"))
    }

    fn names(order: &mut KeyOrder<Item>, now: Instant) -> Vec<&'static str> {
        std::iter::from_fn(|| order.next(now))
            .map(|i| i.0)
            .collect()
    }

    #[test]
    fn a_released_key_whose_first_message_fails_again_stays_blocked() {
        let t0 = Instant::now();
        let backoff = Duration::from_millis(100);
        let mut order = KeyOrder::default();
        order.arrive(a("a1"));
        let first = order.next(t0).unwrap();
        assert_eq!(first, a("a1"));
        order.back_off(first, t0 + backoff);
        order.arrive(a("a2"));
        order.arrive(a("a3"));
        assert_eq!(
            names(&mut order, t0),
            Vec::<&str>::new(),
            "a1 waits out its backoff"
        );
        let first = order.next(t0 + backoff).unwrap();
        assert_eq!(first, a("a1"));
        order.finish(&first);
        // The key is released: a2 comes, fails, and a3 must not overtake it.
        let second = order.next(t0 + backoff).unwrap();
        assert_eq!(second, a("a2"));
        order.back_off(second, t0 + 2 * backoff);
        assert_eq!(
            names(&mut order, t0 + backoff),
            Vec::<&str>::new(),
            "a3 waits while a2 backs off"
        );
        let second = order.next(t0 + 2 * backoff).unwrap();
        assert_eq!(second, a("a2"));
        order.finish(&second);
        assert_eq!(names(&mut order, t0 + 2 * backoff), vec!["a3"]);
    }

    #[test]
    fn a_message_requeued_after_a_failed_dead_letter_publish_blocks_its_key() {
        // max_deliveries = 1: a1 is nacked at its first delivery, its dead-letter publish
        // fails, and it is requeued for another try.
        let t0 = Instant::now();
        let max_backoff = Duration::from_secs(1);
        let mut order = KeyOrder::default();
        order.arrive(a("a1"));
        let first = order.next(t0).unwrap();
        order.requeue(first, t0 + max_backoff);
        order.arrive(a("a2"));
        order.arrive(Item("b1", Some("b")));
        order.arrive(Item("n1", None));
        assert_eq!(
            names(&mut order, t0),
            vec!["b1", "n1"],
            "a2 does not overtake the requeued a1; other keys and keyless messages go on"
        );
        let first = order.next(t0 + max_backoff).unwrap();
        assert_eq!(first, a("a1"));
        order.finish(&first);
        assert_eq!(names(&mut order, t0 + max_backoff), vec!["a2"]);
    }

    #[test]
    fn a_key_has_one_message_handed_out_at_a_time() {
        let t0 = Instant::now();
        let mut order = KeyOrder::default();
        for item in [a("a1"), a("a2"), Item("b1", Some("b")), Item("n1", None)] {
            order.arrive(item);
        }
        assert_eq!(names(&mut order, t0), vec!["a1", "b1", "n1"]);
        order.finish(&a("a1"));
        assert_eq!(names(&mut order, t0), vec!["a2"]);
        assert_eq!(order.next_due(), None);
    }

    fn at(entry: u64, batch_size: u32, batch_index: u32) -> Position {
        Position {
            entry: EntryId {
                ledger: 7,
                entry,
                partition: -1,
            },
            batch_size,
            batch_index,
        }
    }

    #[test]
    fn an_unbatched_message_is_acked_at_once() {
        let mut acks = BatchAcks::default();
        acks.arrive(&at(1, 1, 0));
        assert!(acks.settle(&at(1, 1, 0)));
        assert!(acks.open.is_empty());
    }

    #[test]
    fn a_batch_is_acked_with_its_last_settled_message_in_any_order() {
        let mut acks = BatchAcks::default();
        for index in 0..3 {
            acks.arrive(&at(1, 3, index));
        }
        acks.arrive(&at(2, 2, 0));
        acks.arrive(&at(2, 2, 1));
        assert!(!acks.settle(&at(1, 3, 2)));
        assert!(!acks.settle(&at(1, 3, 2)), "settling twice counts once");
        assert!(!acks.settle(&at(1, 3, 0)));
        assert!(!acks.settle(&at(2, 2, 1)));
        assert!(acks.settle(&at(1, 3, 1)), "the last one acks the entry");
        assert_eq!(acks.open.len(), 1, "a settled entry is forgotten");
        assert!(acks.settle(&at(2, 2, 0)));
        assert!(acks.open.is_empty());
    }

    #[test]
    fn a_redelivered_batch_is_tracked_afresh_after_the_stream_is_lost() {
        let mut acks = BatchAcks::default();
        acks.arrive(&at(1, 2, 0));
        acks.arrive(&at(1, 2, 1));
        assert!(!acks.settle(&at(1, 2, 0)));
        acks.clear();
        // The rebuilt stream gets the whole entry again: both must be settled again.
        acks.arrive(&at(1, 2, 0));
        acks.arrive(&at(1, 2, 1));
        assert!(!acks.settle(&at(1, 2, 1)));
        assert!(acks.settle(&at(1, 2, 0)));
    }

    #[test]
    fn clear_forgets_unsettled_keys() {
        let t0 = Instant::now();
        let mut order = KeyOrder::default();
        order.arrive(a("a1"));
        let first = order.next(t0).unwrap();
        order.back_off(first, t0 + Duration::from_secs(1));
        order.clear();
        assert_eq!(order.next_due(), None);
        order.arrive(a("a1"));
        assert_eq!(names(&mut order, t0), vec!["a1"]);
    }
}
