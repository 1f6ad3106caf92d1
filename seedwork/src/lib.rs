//! # seedwork
//!
//! Building blocks for CQRS and domain-driven design in Rust.
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod application;
pub mod domain;
mod error;
#[cfg(feature = "memory")]
pub mod memory;
pub mod messaging;
#[cfg(feature = "testing")]
pub mod testing;
pub mod uow;

pub use application::{Bus, BusBuilder, Command, Dep, Query};
pub use domain::{AggregateRoot, DomainError, DomainEvent};
pub use error::{BoxError, BuildError, Error, ErrorKind, HandlerKind, Result};
pub use messaging::{IntegrationCommand, IntegrationEvent};

#[cfg(feature = "macros")]
pub use seedwork_macros::{
    command_handler, domain_event_handler, integration_mapper, message_handler, query_handler,
    Command, DomainEvent, IntegrationCommand, IntegrationEvent, Query,
};

/// Re-exported for handler implementations: `#[seedwork::async_trait]`.
pub use async_trait::async_trait;
/// Re-exported for the registration macros.
#[doc(hidden)]
pub use inventory;

/// The names a module of an application usually needs.
pub mod prelude {
    pub use crate::application::{
        Bus, Command, CommandHandler, Dep, DomainEventHandler, MessageHandler, Query,
        QueryHandler,
    };
    pub use crate::domain::{
        check_rule, AggregateRoot, AggregateState, BusinessRule, DomainError, DomainEvent,
        Entity, EventMetadata, Repository, ValueObject,
    };
    pub use crate::error::{Error, Result};
    pub use crate::messaging::{Envelope, IntegrationMessage};
    pub use crate::uow::UnitOfWork;
}
