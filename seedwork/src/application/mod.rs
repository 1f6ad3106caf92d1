//! The application layer: commands and queries with their handlers, domain-event and
//! integration-message handlers, and the [`Bus`] that routes each message to its handlers.
//!
//! Handlers are registered either with the attribute macros (`#[command_handler]`…, which
//! submit them to [`inventory`] so a module registers itself by being linked) or explicitly on
//! the [`BusBuilder`]. Either way, their dependencies come from the typed [`Resources`] the
//! application provides when it builds the bus.

mod build_error;
mod builder;
mod bus;
mod command;
mod consume;
mod event_handler;
mod message_handler;
mod query;
pub(crate) mod registry;
mod resources;
mod router;
mod type_map;

pub use build_error::{BuildError, BuildProblem};
pub use builder::BusBuilder;
pub use bus::{Bus, Context};
pub use command::{Command, CommandHandler};
pub use consume::{ConsumeOptions, MessageOutcome, OutagePolicy};
pub use event_handler::DomainEventHandler;
pub use message_handler::MessageHandler;
pub use query::{Query, QueryHandler};
pub use resources::{Dep, FromResources, Resources};
pub(crate) use router::EventRouter;

/// A boxed, sendable future: what the erased handlers return.
pub(crate) type BoxFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
