//! The state a broker and its consumers share: the pulsar-rs clients, the settings, and the
//! producers, created on first use and shared by every publish to a topic.
//!
//! A module of its own so that the broker (which attaches consumers) and the consumers (which
//! publish dead letters through it) both depend on it rather than on each other.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pulsar::{Pulsar, TokioExecutor};
use seedwork::Result;
use tracing::debug;

use crate::batching::Batching;
use crate::codec::{Codec, Schemas, WireSchema};
use crate::error::PulsarError;

type Producer = pulsar::Producer<TokioExecutor>;
/// Producers by topic and schema (a dead-letter topic may be written with several schemas).
type ProducerCache = HashMap<(String, ProducerSchema), Arc<tokio::sync::Mutex<Producer>>>;
/// The schema a producer announces, as a cache key ([`WireSchema::cache_key`]).
type ProducerSchema = Option<(Codec, Option<u64>)>;

/// The default of [`PulsarBuilder::max_held_back`](crate::PulsarBuilder::max_held_back).
pub(crate) const DEFAULT_MAX_HELD_BACK: usize = 1000;

/// Settings of a [`PulsarBroker`](crate::PulsarBroker), set through
/// [`PulsarBuilder`](crate::PulsarBuilder).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) send_timeout: Duration,
    pub(crate) max_reconnect_backoff: Duration,
    pub(crate) max_held_back: usize,
    pub(crate) batching: Batching,
    /// Topics whose messages are always sent one per entry.
    pub(crate) unbatched: HashSet<String>,
}

/// A pulsar-rs client of the broker at `url`, with bounded retries.
pub(crate) async fn client(url: &str) -> Result<Pulsar<TokioExecutor>> {
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

/// What a [`PulsarBroker`](crate::PulsarBroker) and its consumers share: the two
/// connections, the declared schemas, the settings and the producers.
pub(crate) struct Inner {
    /// The producers' connection (and the health check's lookups).
    pub(crate) client: Pulsar<TokioExecutor>,
    /// The consumers' connection: see [`PulsarBuilder::connect`](crate::PulsarBuilder::connect)
    /// for why it is separate.
    pub(crate) consuming: Pulsar<TokioExecutor>,
    pub(crate) url: String,
    pub(crate) schemas: Schemas,
    pub(crate) settings: Settings,
    producers: Mutex<ProducerCache>,
}

impl Inner {
    /// The shared state of a broker connected through `client` (producers) and `consuming`.
    pub(crate) fn new(
        client: Pulsar<TokioExecutor>,
        consuming: Pulsar<TokioExecutor>,
        url: String,
        schemas: Schemas,
        settings: Settings,
    ) -> Inner {
        Inner {
            client,
            consuming,
            url,
            schemas,
            settings,
            producers: Mutex::new(HashMap::new()),
        }
    }

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
