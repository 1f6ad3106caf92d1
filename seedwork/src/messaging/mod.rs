//! Integration messaging: the envelope and message types that cross process boundaries, the
//! [`Publisher`]/[`Subscriber`]/[`Consumer`] ports a broker adapter implements, the outbox
//! port a store implements, and the [`OutboxRelay`] that moves committed messages from one to
//! the other; the inbox's retention ([`InboxStore`], [`InboxRetention`]).

mod consumer;
pub mod dead_letter;
mod envelope;
mod inbox;
mod message;
mod outbox;
mod publisher;
mod relay;
pub mod schema;
pub mod upcast;

pub use consumer::{
    Consumer, Delivery, RetryPolicy, Subscriber, SubscriptionKind, SubscriptionOptions,
    SubscriptionRefused, TransactionalAck,
};
pub use envelope::{now_millis, Envelope};
pub use inbox::{InboxRetention, InboxStore};
pub use message::{
    IntegrationCommand, IntegrationEvent, IntegrationMessage, Message, MessageKind, BAGGAGE_PREFIX,
    CAUSATION_ID, CORRELATION_ID,
};
pub use outbox::{OutboxEntry, OutboxLag, OutboxStore, ParkedEntry, PublishFailure};
pub use publisher::Publisher;
pub use relay::{OutboxRelay, RelayRound};
pub use schema::{AvroSchema, MessageSchema};
pub use upcast::Upcaster;
