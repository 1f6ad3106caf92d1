//! The connection to a Pulsar cluster: [`PulsarBroker`] publishes and subscribes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pulsar::{Pulsar, TokioExecutor};
use seedwork::messaging::{Consumer, Message, Publisher, Subscriber, SubscriptionOptions};
use seedwork::Result;
use tracing::debug;

use crate::codec::{Codec, Schemas, TopicSchema, WireSchema};
use crate::consumer::PulsarConsumer;
use crate::error::PulsarError;

type Producer = pulsar::Producer<TokioExecutor>;
/// Producers by topic and schema (a dead-letter topic may be written with several schemas).
type ProducerCache = HashMap<(String, ProducerSchema), Arc<tokio::sync::Mutex<Producer>>>;
/// The schema a producer announces, as a cache key ([`WireSchema::cache_key`]).
type ProducerSchema = Option<(Codec, Option<u64>)>;

/// The topic [`Publisher::check`] looks up (a lookup creates nothing).
const HEALTH_PROBE_TOPIC: &str = "persistent://public/default/seedwork-health-probe";

/// The default of [`PulsarBuilder::max_held_back`].
pub(crate) const DEFAULT_MAX_HELD_BACK: usize = 1000;

/// Settings of a [`PulsarBroker`], set through [`PulsarBuilder`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) send_timeout: Duration,
    pub(crate) max_reconnect_backoff: Duration,
    pub(crate) max_held_back: usize,
    pub(crate) batching: Batching,
    /// Topics whose messages are always sent one per entry.
    pub(crate) unbatched: HashSet<String>,
}

/// How a [`PulsarBroker`]'s producers group messages into broker entries (set with
/// [`PulsarBuilder::batching`]; off unless asked for, see below).
///
/// A batch is one entry on the broker holding several messages; the broker stores and
/// acknowledges entries, so one write and one receipt cover the whole batch. That is what lets
/// the outbox relay publish many messages per broker round trip. A batch is sent as soon as it
/// holds [`max_messages`](Self::max_messages) messages or [`max_bytes`](Self::max_bytes) of
/// payload, and at the latest [`max_delay`](Self::max_delay) after its first message, so a lone
/// message waits that long at most. A producer has one batch on its way to the broker at a
/// time; messages keep their publish order within and across batches.
///
/// Batches only fill when many publishes are outstanding at once: a publish returns with the
/// broker's receipt, so a caller with 16 publishes in flight (the outbox relay's default
/// `max_in_flight`) makes batches of at most 16, one broker round trip each. Give the relay
/// more, e.g. `OutboxRelay::max_in_flight(1000).batch_size(1000)` (docs/performance.md has
/// the figures).
///
/// Consumers of this crate acknowledge a batch only once all of its messages are settled (see
/// [`PulsarConsumer`](crate::PulsarConsumer)), so batching changes nothing in what they
/// deliver: a message nacked or not yet handled keeps its whole entry unacknowledged, and a
/// consumer that goes away leaves the entry to be redelivered whole (the messages already
/// handled come again; the inbox recognises them).
///
/// **Why it is off by default: Key_Shared subscriptions.** pulsar-rs mixes keys in a batch and
/// gives the entry no key of its own, and the broker routes a Key_Shared subscription's entries
/// by the entry's key: batched entries are then spread over the subscription's consumers
/// without regard to their messages' keys (measured on Pulsar 4.0: messages of one key reached
/// two consumers), so a key's messages may be processed concurrently and out of order. Turn
/// batching on only for topics no Key_Shared subscription with several consumers reads, or
/// turn it on for all and exempt those topics with [`PulsarBuilder::unbatched`]. Batching per
/// key (what the Java client offers for Key_Shared) would not help the outbox relay: it
/// publishes a key's messages one after the other, so a key never has two in one batch.
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
    fn apply(&self, options: &mut pulsar::ProducerOptions) {
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

/// Configures and connects a [`PulsarBroker`].
///
/// ```no_run
/// # async fn run() -> seedwork::Result<()> {
/// use seedwork_pulsar::{PulsarBroker, TopicSchema};
///
/// let broker = PulsarBroker::builder("pulsar://127.0.0.1:6650")
///     .schema(TopicSchema::json("audit"))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PulsarBuilder {
    url: String,
    schemas: Schemas,
    settings: Settings,
}

impl PulsarBuilder {
    /// Declares a topic's schema (see [`TopicSchema`]). Undeclared topics travel as JSON
    /// without a registered schema, unless a [`fallback`](Self::fallback) is set.
    pub fn schema(mut self, schema: TopicSchema) -> Self {
        self.schemas.declare(schema);
        self
    }

    /// The codec and record used for every undeclared topic.
    pub fn fallback(mut self, schema: TopicSchema) -> Self {
        self.schemas.set_fallback(schema);
        self
    }

    /// How long a publish may take, from connecting the producer to the broker's receipt,
    /// before it fails with [`Error::Unavailable`](seedwork::Error::Unavailable) (default
    /// 10 s). The outbox relay then leaves the entry for its next round.
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.settings.send_timeout = timeout;
        self
    }

    /// The longest pause between two attempts to rebuild a consumer that lost the broker
    /// (default 5 s; the pauses start at 100 ms and double).
    pub fn max_reconnect_backoff(mut self, backoff: Duration) -> Self {
        self.settings.max_reconnect_backoff = backoff;
        self
    }

    /// The most messages a consumer keeps received but not handed out — held back behind an
    /// earlier message of their key, or waiting out a nack's backoff (default 1 000, at least
    /// 1). At the bound the consumer stops reading from the broker until some are handed out,
    /// so a key stuck in backoff cannot make a process buffer the whole backlog; the broker's
    /// own prefetch is bounded by this number too.
    pub fn max_held_back(mut self, max: usize) -> Self {
        self.settings.max_held_back = max.max(1);
        self
    }

    /// How producers batch messages: [`Batching::on`] packs messages published close together
    /// into one broker entry, for throughput; the default, [`Batching::off`], sends one entry
    /// per message. Read [`Batching`] before turning it on for a topic read through a
    /// Key_Shared subscription.
    pub fn batching(mut self, batching: Batching) -> Self {
        self.settings.batching = batching;
        self
    }

    /// Sends `topic`'s messages unbatched, one entry each, whatever [`batching`](Self::batching)
    /// says (`topic` as messages name it): for a topic read through a Key_Shared subscription,
    /// which the broker routes by key only when each entry is one message (see [`Batching`]).
    pub fn unbatched(mut self, topic: impl Into<String>) -> Self {
        self.settings.unbatched.insert(topic.into());
        self
    }

    /// Connects to the broker. Fails with [`Error::Unavailable`](seedwork::Error::Unavailable)
    /// when it cannot be reached, [`Error::Broker`](seedwork::Error::Broker) when it refuses.
    pub async fn connect(self) -> Result<PulsarBroker> {
        // Two clients, so two TCP connections: one for the producers, one for the consumers.
        // pulsar-rs leaves Nagle's algorithm on, and the broker answers a consumer's
        // acknowledgement with no data, so the kernel holds the next small write on that
        // connection until the broker's delayed ACK (40 ms on Linux). On a shared connection
        // every publish that followed an acknowledgement waited for it.
        let publishing = client(&self.url).await?;
        let consuming = client(&self.url).await?;
        Ok(PulsarBroker {
            inner: Arc::new(Inner {
                client: publishing,
                consuming,
                url: self.url,
                schemas: self.schemas,
                settings: self.settings,
                producers: Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// A pulsar-rs client of the broker at `url`, with bounded retries.
async fn client(url: &str) -> Result<Pulsar<TokioExecutor>> {
    let client = Pulsar::builder(url.to_string(), TokioExecutor)
        // pulsar-rs retries "busy" and "not ready" answers forever by default, so a second
        // Exclusive consumer would wait instead of being refused. A few quick retries ride
        // out a topic being loaded; the consumer's own rebuild loop does the rest.
        .with_operation_retry_options(pulsar::OperationRetryOptions {
            operation_timeout: Duration::from_secs(10),
            retry_delay: Duration::from_millis(500),
            max_retries: Some(3),
        })
        // Give up on a dead connection quickly: publishes are bounded by the send timeout
        // and consumers rebuild themselves, so long retries inside pulsar-rs only delay
        // the error the caller needs to see.
        .with_connection_retry_options(pulsar::ConnectionRetryOptions {
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            max_retries: 4,
            connection_timeout: Duration::from_secs(5),
            ..Default::default()
        })
        .build()
        .await
        .map_err(|source| PulsarError::Connect {
            url: url.to_string(),
            source,
        })?;
    Ok(client)
}

/// A Pulsar cluster as seedwork's [`Publisher`] and [`Subscriber`].
///
/// Cheap to clone; clones share the two connections (one for producers, one for consumers)
/// and the producers (one per topic and schema, created on first use, dropped after a failure
/// and recreated on the next publish).
#[derive(Clone)]
pub struct PulsarBroker {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// The producers' connection (and the health check's lookups).
    pub(crate) client: Pulsar<TokioExecutor>,
    /// The consumers' connection: see [`PulsarBuilder::connect`] for why it is separate.
    pub(crate) consuming: Pulsar<TokioExecutor>,
    url: String,
    pub(crate) schemas: Schemas,
    pub(crate) settings: Settings,
    producers: Mutex<ProducerCache>,
}

impl std::fmt::Debug for PulsarBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulsarBroker")
            .field("url", &self.inner.url)
            .finish_non_exhaustive()
    }
}

impl PulsarBroker {
    /// A builder for the broker at `url` (`pulsar://host:6650`).
    pub fn builder(url: impl Into<String>) -> PulsarBuilder {
        PulsarBuilder {
            url: url.into(),
            schemas: Schemas::new(),
            settings: Settings {
                send_timeout: Duration::from_secs(10),
                max_reconnect_backoff: Duration::from_secs(5),
                max_held_back: DEFAULT_MAX_HELD_BACK,
                batching: Batching::default(),
                unbatched: HashSet::new(),
            },
        }
    }

    /// Connects with the defaults (every topic schemaless JSON).
    pub async fn connect(url: impl Into<String>) -> Result<PulsarBroker> {
        Self::builder(url).connect().await
    }

    /// The broker's URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The declaration in effect for `topic`.
    pub fn topic_schema(&self, topic: &str) -> TopicSchema {
        self.inner.schemas.for_topic(topic)
    }
}

impl Inner {
    /// Sends one message to `topic` with a producer announcing `schema`, waiting for the
    /// broker's receipt, within the send timeout.
    pub(crate) async fn send(
        &self,
        topic: &str,
        schema: Option<&WireSchema>,
        message: pulsar::producer::Message,
    ) -> Result<()> {
        let cache_key = (topic.to_string(), schema.map(WireSchema::cache_key));
        let attempt = async {
            let producer = self.producer(topic, schema, &cache_key).await?;
            // Hold the producer only to enqueue: messages keep their order, and the next
            // publish need not wait for this one's receipt.
            let receipt = producer
                .lock()
                .await
                .send_non_blocking(message)
                .await
                .map_err(|source| PulsarError::Send {
                    topic: topic.to_string(),
                    source,
                })?;
            receipt.await.map_err(|source| PulsarError::Receipt {
                topic: topic.to_string(),
                source,
            })
        };
        let error = match tokio::time::timeout(self.settings.send_timeout, attempt).await {
            Ok(Ok(_receipt)) => return Ok(()),
            Ok(Err(error)) => error,
            Err(_) => PulsarError::SendTimeout {
                topic: topic.to_string(),
                timeout: self.settings.send_timeout,
            },
        };
        // The producer may be broken (connection lost, fenced): start afresh next time.
        self.producers
            .lock()
            .expect("producer cache lock")
            .remove(&cache_key);
        Err(error.into())
    }

    /// The batching of `topic`'s producer.
    fn batching_for(&self, topic: &str) -> Batching {
        if self.settings.unbatched.contains(topic) {
            Batching::off()
        } else {
            self.settings.batching
        }
    }

    async fn producer(
        &self,
        topic: &str,
        schema: Option<&WireSchema>,
        cache_key: &(String, ProducerSchema),
    ) -> std::result::Result<Arc<tokio::sync::Mutex<Producer>>, PulsarError> {
        if let Some(producer) = self
            .producers
            .lock()
            .expect("producer cache lock")
            .get(cache_key)
        {
            return Ok(producer.clone());
        }
        debug!(topic, "creating producer");
        let mut options = pulsar::ProducerOptions {
            schema: schema.and_then(WireSchema::to_proto),
            ..Default::default()
        };
        self.batching_for(topic).apply(&mut options);
        let producer = self
            .client
            .producer()
            .with_topic(topic)
            .with_options(options)
            .build()
            .await
            .map_err(|source| PulsarError::CreateProducer {
                topic: topic.to_string(),
                source,
            })?;
        let producer = Arc::new(tokio::sync::Mutex::new(producer));
        // Two publishers may have raced; keep the first so all share one producer.
        Ok(self
            .producers
            .lock()
            .expect("producer cache lock")
            .entry(cache_key.clone())
            .or_insert(producer)
            .clone())
    }
}

#[async_trait]
impl Publisher for PulsarBroker {
    /// Asks the broker which of its nodes owns a probe topic (a lookup round trip; nothing is
    /// created), within the send timeout.
    async fn check(&self) -> Result<()> {
        let lookup = self.inner.client.lookup_topic(HEALTH_PROBE_TOPIC);
        match tokio::time::timeout(self.inner.settings.send_timeout, lookup).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(PulsarError::Check { source }.into()),
            Err(_) => Err(PulsarError::CheckTimeout {
                timeout: self.inner.settings.send_timeout,
            }
            .into()),
        }
    }

    async fn publish(&self, message: &Message) -> Result<()> {
        let declared = self.inner.schemas.encoding_for(&message.topic);
        let wire = declared.to_pulsar(message)?;
        self.inner
            .send(&message.topic, declared.wire().as_ref(), wire)
            .await
    }
}

#[async_trait]
impl Subscriber for PulsarBroker {
    async fn subscribe(&self, options: SubscriptionOptions) -> Result<Box<dyn Consumer>> {
        let consumer = PulsarConsumer::attach(self.inner.clone(), options).await?;
        Ok(Box::new(consumer))
    }
}
