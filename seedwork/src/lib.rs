//! # seedwork
//!
//! Building blocks for CQRS and domain-driven design: commands and queries routed by a
//! [`Bus`](application::Bus), aggregates that record domain events, a [`UnitOfWork`](uow::UnitOfWork) that
//! dispatches those events in-process and writes integration messages to a transactional
//! outbox in the same transaction, and the messaging ports (publisher, consumer, inbox, relay)
//! that carry them between services.
//!
//! It is the Rust form of the `seedwork` package of the Python CQRS tutorial; the
//! `docs/from-python.md` glossary maps every Python name to its counterpart here.
//!
//! ## The layers
//! Each layer imports only the layers listed before it (`docs/architecture.md`):
//! - [`Error`] and [`Result`]: the one error type, at the bottom.
//! - [`domain`]: [`Entity`](domain::Entity), [`AggregateRoot`](domain::AggregateRoot),
//!   [`ValueObject`](domain::ValueObject), [`DomainEvent`](domain::DomainEvent),
//!   [`BusinessRule`](domain::BusinessRule) with [`check_rule`](domain::check_rule),
//!   [`DomainError`](domain::DomainError), and the [`Repository`](domain::Repository) port, which
//!   sees the business transaction as a [`ChangeTracker`](domain::ChangeTracker).
//! - [`messaging`]: the [`Envelope`](messaging::Envelope), [`Message`](messaging::Message),
//!   integration events and commands, [`Publisher`](messaging::Publisher) /
//!   [`Consumer`](messaging::Consumer), the outbox port and the
//!   [`OutboxRelay`](messaging::OutboxRelay).
//! - [`uow`]: the unit of work, the [`TransactionalStore`](uow::TransactionalStore) port a
//!   backend implements and the [`EventDispatch`](uow::EventDispatch) port the application
//!   layer implements.
//! - [`application`]: [`Command`](application::Command), [`Query`](application::Query), their
//!   handlers, domain-event and message handlers, and the [`Bus`](application::Bus) with its
//!   [`BusBuilder`](application::BusBuilder).
//! - [`eventsourcing`]: event-sourced aggregates, the [`EventStore`](eventsourcing::EventStore)
//!   port, a repository that replays and appends, and projections.
//! - [`saga`]: orchestrated sagas — steps, compensations, deadlines and the saga log — on the
//!   unit of work, the outbox and the inbox.
//! - [`memory`] (feature `memory`, default): the embedded broker and store.
//! - `testing` (feature `testing`): fixtures and the contract suites adapters run.
//!
//! ## A round trip
//! A command handler stores an aggregate; the aggregate's domain event is handled by another
//! module inside the same transaction, and mapped to an integration event in the outbox, which
//! a relay then publishes to the broker.
//!
//! ```
//! use std::sync::Arc;
//! use seedwork::prelude::*;
//! use seedwork::memory::{MemoryBroker, MemoryRepository, MemoryStore};
//! use seedwork::messaging::{IntegrationEvent, MessageKind, OutboxRelay, Subscriber, SubscriptionOptions};
//! # use std::any::Any;
//!
//! // Domain: an aggregate that records an event.
//! #[derive(Clone)]
//! struct Reserva { id: String, state: AggregateState }
//! impl Entity for Reserva { type Id = String; fn id(&self) -> &String { &self.id } }
//! impl AggregateRoot for Reserva {
//!     const TYPE: &'static str = "Reserva";
//!     fn state(&self) -> &AggregateState { &self.state }
//!     fn state_mut(&mut self) -> &mut AggregateState { &mut self.state }
//! }
//! #[derive(Debug)]
//! struct ReservaCreada { id_reserva: String, metadata: EventMetadata }
//! impl DomainEvent for ReservaCreada {
//!     fn event_name(&self) -> &'static str { "ReservaCreada" }
//!     fn metadata(&self) -> &EventMetadata { &self.metadata }
//!     fn as_any(&self) -> &dyn Any { self }
//! }
//!
//! // Application: a command and its handler.
//! struct CrearReserva { id: String }
//! impl Command for CrearReserva { type Output = String; const NAME: &'static str = "CrearReserva"; }
//! struct CrearReservaHandler(MemoryRepository<Reserva>);
//! #[seedwork::async_trait]
//! impl CommandHandler<CrearReserva> for CrearReservaHandler {
//!     async fn handle(&self, cmd: CrearReserva, uow: &mut UnitOfWork) -> Result<String> {
//!         let mut reserva = Reserva { id: cmd.id.clone(), state: AggregateState::new() };
//!         reserva.record(ReservaCreada { id_reserva: cmd.id, metadata: EventMetadata::now() });
//!         self.0.add(uow, &mut reserva).await?;
//!         Ok(reserva.id)
//!     }
//! }
//!
//! // Another module reacts to the domain event inside the same transaction.
//! struct Reaccion(Arc<std::sync::atomic::AtomicUsize>);
//! #[seedwork::async_trait]
//! impl DomainEventHandler<ReservaCreada> for Reaccion {
//!     async fn handle(&self, _event: &ReservaCreada, _uow: &mut UnitOfWork) -> Result<()> {
//!         self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
//!         Ok(())
//!     }
//! }
//!
//! // Integration: the event other services receive.
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct EventoReservaCreada { id_reserva: String }
//! impl IntegrationMessage for EventoReservaCreada {
//!     const TOPIC: &'static str = "eventos-reserva";
//!     const TYPE: &'static str = "EventoReservaCreada";
//!     const VERSION: &'static str = "v1";
//!     const KIND: MessageKind = MessageKind::Event;
//! }
//! impl IntegrationEvent for EventoReservaCreada {}
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let reactions = Arc::new(std::sync::atomic::AtomicUsize::new(0));
//! let bus = Bus::builder()
//!     .service_name("alpespartners")
//!     .store(Arc::new(store.clone()))
//!     .command(CrearReservaHandler(MemoryRepository::new(store.clone())))
//!     .on_event(Reaccion(reactions.clone()))
//!     .publish(|e: &ReservaCreada| EventoReservaCreada { id_reserva: e.id_reserva.clone() })
//!     .build()?;
//!
//! let broker = MemoryBroker::new();
//! let mut consumer = broker.subscribe(SubscriptionOptions::new("eventos-reserva", "notificaciones")).await?;
//!
//! bus.dispatch(CrearReserva { id: "r-1".into() }).await?;
//! assert_eq!(reactions.load(std::sync::atomic::Ordering::SeqCst), 1);
//!
//! // The relay moves the committed outbox to the broker.
//! OutboxRelay::new(Arc::new(store.clone()), Arc::new(broker.clone())).run_once().await?;
//! let delivery = consumer.receive().await?;
//! let event = delivery.message.decode::<EventoReservaCreada>()?;
//! assert_eq!(event.data.id_reserva, "r-1");
//! assert_eq!(event.service_name, "alpespartners");
//! consumer.ack(&delivery).await?;
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```
//!
//! With the `macros` feature the same is written with derives and attribute macros
//! (`#[derive(Command)]`, `#[command_handler]`…), which register the handlers through
//! [`inventory`] so that `Bus::builder().registered()` finds them.
//!
//! ## Feature flags
//! - `memory` (default): [`memory::MemoryStore`], [`memory::MemoryBroker`],
//!   [`memory::MemoryRepository`].
//! - `macros` (default): the derive and registration macros from `seedwork-macros`.
//! - `testing`: `seedwork::testing`, fixtures and contract suites.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backoff;
mod error;
pub mod supervision;

pub mod domain;
pub mod messaging;
pub mod uow;

pub mod application;
pub mod eventsourcing;
pub mod saga;

#[cfg(feature = "memory")]
pub mod memory;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{BoxError, Error, ErrorKind, HandlerKind, Result};

#[cfg(feature = "macros")]
pub use seedwork_macros::{
    command_handler, domain_event_handler, integration_mapper, message_handler, query_handler,
    upcaster, AggregateRoot, AvroSchema, Command, DomainEvent, IntegrationCommand,
    IntegrationEvent, Query,
};

// Lets the derives, whose code names `::seedwork`, be used inside this crate too.
extern crate self as seedwork;

/// Re-exported for handler implementations: `#[seedwork::async_trait]`.
pub use async_trait::async_trait;

/// What the macros' generated code refers to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::application::registry::{__into_result, Registration};
    pub use inventory;
    pub use serde;
    pub use serde_json;
}

/// The names a module of an application usually needs: the traits, the derives of the same
/// names (feature `macros`), the bus, the unit of work and the error type.
pub mod prelude {
    pub use crate::application::{
        Bus, Command, CommandHandler, Dep, DomainEventHandler, MessageHandler, Query, QueryHandler,
    };
    pub use crate::domain::{
        check_rule, AggregateRoot, AggregateState, BusinessRule, DomainError, DomainEvent, Entity,
        EventMetadata, Page, PageRequest, Repository, ValueObject,
    };
    pub use crate::error::{Error, Result};
    pub use crate::messaging::{
        Envelope, IntegrationCommand, IntegrationEvent, IntegrationMessage,
    };
    pub use crate::uow::UnitOfWork;
    #[cfg(feature = "macros")]
    pub use seedwork_macros::{
        command_handler, domain_event_handler, integration_mapper, message_handler, query_handler,
        AggregateRoot, Command, DomainEvent, IntegrationCommand, IntegrationEvent, Query,
    };
}
