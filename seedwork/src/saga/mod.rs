//! Sagas (process managers): a business process across services, kept consistent by
//! compensation instead of a distributed transaction.
//!
//! An [`Orchestration`] is a starting message and a list of [`Step`]s, each with its command,
//! the replies that tell how it went, its compensation and its timeout — the tutorial's
//! `CoordinadorOrquestacion`, made correct: on success the next step's *command* is sent; a
//! failure at step N sends the compensations of steps N-1…1, in reverse order, each once; a
//! step that gets no answer before its deadline takes the failure path.
//!
//! What makes it reliable is what makes the rest of `seedwork` reliable:
//! - **the unit of work and the outbox**: an instance's state change and the commands it sends
//!   commit in one transaction, so a step is never lost (a command without its state change, or
//!   the other way round, cannot happen);
//! - **the inbox**: a redelivered reply is recognised and has no second effect, so a step is
//!   never taken twice;
//! - **the store**: instances are rows of a [`SagaStore`], loaded for update and saved with an
//!   optimistic version, so two replies for one instance at once are taken one after the other;
//!   deadlines are stored with them and survive a restart ([`SagaDeadlines`]);
//! - **the trace**: every message a saga sends carries its instance's correlation id, and the
//!   services that answer pass it on without any code, so the replies find their instance.
//!
//! Each instance keeps its log — every step seen, every message received or sent — which
//! [`Sagas::log`] answers for a correlation id. A process without a coordinator (services
//! reacting to each other's events) gets the same log from a [`Choreography`], which records
//! the messages of each conversation it observes.
//!
//! ```
//! use std::sync::Arc;
//! use seedwork::application::Bus;
//! use seedwork::memory::MemoryStore;
//! use seedwork::saga::{Orchestration, Reply, SagaStatus, Sagas, Step};
//! # use seedwork::messaging::{IntegrationMessage, Message, MessageKind};
//! # #[derive(serde::Serialize, serde::Deserialize)] struct PedidoCreado { id: String }
//! # impl IntegrationMessage for PedidoCreado { const TOPIC: &'static str = "eventos-pedido"; const TYPE: &'static str = "PedidoCreado"; const VERSION: &'static str = "v1"; const KIND: MessageKind = MessageKind::Event; }
//! # #[derive(serde::Serialize, serde::Deserialize)] struct Cobrar { pedido: String }
//! # impl IntegrationMessage for Cobrar { const TOPIC: &'static str = "comando-cobrar"; const TYPE: &'static str = "Cobrar"; const VERSION: &'static str = "v1"; const KIND: MessageKind = MessageKind::Command; }
//! # #[derive(serde::Serialize, serde::Deserialize)] struct Cobro { aceptado: bool }
//! # impl IntegrationMessage for Cobro { const TOPIC: &'static str = "evento-cobro"; const TYPE: &'static str = "Cobro"; const VERSION: &'static str = "v1"; const KIND: MessageKind = MessageKind::Event; }
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Pedido { id: String }
//!
//! let pedido = Orchestration::new("pedido")
//!     .start_on(|creado: &PedidoCreado| Some(Pedido { id: creado.id.clone() }))
//!     .step(Step::new("cobro")
//!         .command(|p: &Pedido| Cobrar { pedido: p.id.clone() })
//!         .on_reply(|c: &Cobro, _: &mut Pedido| {
//!             Some(if c.aceptado { Reply::Succeeded } else { Reply::Failed("rechazado".into()) })
//!         }));
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let sagas = Sagas::new(Arc::new(store.clone())).orchestration(pedido);
//! let bus = Bus::builder().store(Arc::new(store.clone())).sagas(&sagas).build()?;
//!
//! // What a consumer of `saga-pedido` on `eventos-pedido` does with the event:
//! let creado = Message::encode(&PedidoCreado { id: "p-1".into() }, "pedidos")?
//!     .with_property(seedwork::messaging::CORRELATION_ID, "c-1");
//! bus.handle_message(&Sagas::subscription_name("pedido"), &creado).await?;
//!
//! let log = sagas.log("c-1").await?;
//! assert_eq!(log[0].status, SagaStatus::Running);
//! let sent = store.outbox_snapshot();
//! assert_eq!(sent[0].message.envelope.message_type, "Cobrar");
//! assert_eq!(sent[0].message.correlation_id(), Some("c-1"));
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

mod choreography;
mod deadlines;
mod definition;
mod engine;
mod record;
mod registry;
mod store;

pub use choreography::Choreography;
pub use deadlines::SagaDeadlines;
pub use definition::{Orchestration, Reply, SagaState, Step};
pub use record::{SagaKey, SagaLogEntry, SagaLogKind, SagaRecord, SagaStatus};
pub use registry::Sagas;
pub use store::SagaStore;
