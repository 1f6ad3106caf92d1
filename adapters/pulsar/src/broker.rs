//! The connection to a Pulsar cluster: [`PulsarBroker`] publishes and subscribes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use seedwork::messaging::{Consumer, Message, Publisher, Subscriber, SubscriptionOptions};
use seedwork::Result;

use crate::batching::Batching;
use crate::codec::{Schemas, TopicSchema};
use crate::connection::{client, Inner, Settings, DEFAULT_MAX_HELD_BACK};
use crate::consumer::PulsarConsumer;
use crate::error::PulsarError;

/// The topic [`Publisher::check`] looks up (a lookup creates nothing).
const HEALTH_PROBE_TOPIC: &str = "persistent://public/default/seedwork-health-probe";

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
    derived: bool,
}

impl PulsarBuilder {
    /// Declares a topic's schema (see [`TopicSchema`]), in place of the derived one. A topic
    /// neither declared nor derived travels as JSON without a registered schema, unless a
    /// [`fallback`](Self::fallback) is set; `.schema(TopicSchema::json(topic))` keeps a topic
    /// of registered types on JSON.
    pub fn schema(mut self, schema: TopicSchema) -> Self {
        self.schemas.declare(schema);
        self
    }

    /// Whether every topic that `#[derive(IntegrationEvent)]`/`#[derive(IntegrationCommand)]`
    /// types are registered for travels as Avro under the schema derived from those types
    /// ([`TopicSchema::derived`]) without being declared (default `true`). With `false`, only
    /// declared topics have a schema.
    pub fn derived_schemas(mut self, derived: bool) -> Self {
        self.derived = derived;
        self
    }

    /// The codec and record used for every topic neither declared nor derived.
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
    /// A registered type whose schema cannot be derived (two payload records of one name on a
    /// topic…) fails with [`Error::Codec`](seedwork::Error::Codec).
    pub async fn connect(mut self) -> Result<PulsarBroker> {
        if self.derived {
            self.schemas
                .declare_registered()
                .map_err(|e| seedwork::Error::codec(e.topic().to_string(), e))?;
        }
        // Two clients, so two TCP connections: one for the producers, one for the consumers.
        // pulsar-rs leaves Nagle's algorithm on, and the broker answers a consumer's
        // acknowledgement with no data, so the kernel holds the next small write on that
        // connection until the broker's delayed ACK (40 ms on Linux). On a shared connection
        // every publish that followed an acknowledgement waited for it.
        let publishing = client(&self.url).await?;
        let consuming = client(&self.url).await?;
        Ok(PulsarBroker {
            inner: Arc::new(Inner::new(
                publishing,
                consuming,
                self.url,
                self.schemas,
                self.settings,
            )),
        })
    }
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
            derived: true,
            settings: Settings {
                send_timeout: Duration::from_secs(10),
                max_reconnect_backoff: Duration::from_secs(5),
                max_held_back: DEFAULT_MAX_HELD_BACK,
                batching: Batching::default(),
                unbatched: HashSet::new(),
            },
        }
    }

    /// Connects with the defaults: the topics of registered message types under their derived
    /// schemas, every other topic schemaless JSON.
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

    /// Deletes the subscription on the broker, through a consumer attached to ask for it.
    async fn unsubscribe(&self, topic: &str, subscription: &str) -> Result<()> {
        Ok(crate::consumer::unsubscribe(&self.inner, topic, subscription).await?)
    }
}
