//! Apache Pulsar for [seedwork](https://docs.rs/seedwork): the broker the tutorial runs on.
//!
//! [`PulsarBroker`] implements seedwork's [`Publisher`](seedwork::messaging::Publisher) (give
//! it to the outbox relay) and [`Subscriber`](seedwork::messaging::Subscriber) (give it to
//! `Bus::consume`), on the [`pulsar`] crate with the tokio runtime.
//!
//! - **Wire format** ([`codec`]): the payload is the record `{"data": …}` as the Python
//!   `pulsar.schema.Record` classes send it — a plain Avro datum under the topic's registered
//!   schema ([`TopicSchema::avro`]) or JSON — and the envelope travels in message properties.
//!   Python services using `pulsar-client` read our events and we read their commands.
//! - **Derived schemas**: a topic of registered message types (`#[derive(IntegrationEvent)]`)
//!   needs no declaration; [`PulsarBuilder::connect`] gives it the schema derived from its types
//!   ([`TopicSchema::derived`]): a record for one type, a union for several.
//! - **Subscriptions**: Shared (default), KeyShared, Failover, Exclusive; the message key is
//!   the Pulsar partition key (the aggregate id), so a key's messages keep their order.
//! - **Batching** ([`Batching`], off by default): with [`Batching::on`], producers pack the
//!   messages published close together into one broker entry (a lone message waits 1 ms at
//!   most), which is what lets the outbox relay publish many messages per broker round trip.
//!   Consumers acknowledge a batch only once all of its messages are settled. Batches do not
//!   keep Key_Shared routing by key, hence off by default and
//!   [`unbatched`](PulsarBuilder::unbatched) for Key_Shared topics.
//! - **Schema evolution** ([`compatibility`]): whether a new schema may follow the ones a
//!   topic has, checked locally under the registry's strategy (`FULL` by default); a producer
//!   the registry refuses fails with [`seedwork::Error::Broker`], not retried.
//! - **Failures** ([`PulsarConsumer`]): nack with the subscription's backoff, dead-letter topic
//!   after `max_deliveries` (the dead letter keeps schema and envelope, so it still decodes, and
//!   carries seedwork's [`dead_letter`](seedwork::messaging::dead_letter) properties),
//!   undecodable messages dead-lettered at once, consumers rebuilt when they lose the broker,
//!   publishes bounded by a timeout so the outbox relay retries them in its next round.
//!
//! ```no_run
//! # async fn run() -> seedwork::Result<()> {
//! use seedwork::messaging::{Subscriber, SubscriptionOptions};
//! use seedwork_pulsar::{AvroType, PulsarBroker, Record, TopicSchema};
//!
//! let payload = Record::new("ReservaCreadaPayload")
//!     .field("id_reserva", AvroType::String)
//!     .field("id_cliente", AvroType::String)
//!     .field("estado", AvroType::String)
//!     .field("fecha_creacion", AvroType::Long);
//! let wire = Record::new("EventoReservaCreada").field("data", AvroType::Record(payload));
//! let broker = PulsarBroker::builder("pulsar://127.0.0.1:6650")
//!     .schema(TopicSchema::avro_record("eventos-reserva", &wire).expect("a valid schema"))
//!     .connect()
//!     .await?;
//! let mut consumer = broker
//!     .subscribe(SubscriptionOptions::new("eventos-reserva", "notificaciones"))
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Building this crate needs `protoc` and the OpenSSL headers (Debian: `protobuf-compiler
//! libssl-dev pkg-config`), which is why the seedwork workspace keeps it out of its default
//! members.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod batching;
mod broker;
pub mod codec;
pub mod compatibility;
mod connection;
mod consumer;
mod error;

pub use batching::Batching;
pub use broker::{PulsarBroker, PulsarBuilder};
pub use codec::{AvroType, Codec, Record, SchemaError, Schemas, TopicSchema};
pub use consumer::PulsarConsumer;
/// The `pulsar` crate this adapter is built on, for what seedwork's ports do not cover.
pub use pulsar;
