//! The domain layer: entities, aggregates, value objects, domain events, business rules and the
//! ports (repositories, factories, mappers) through which the application reaches them.
//!
//! Nothing here knows about databases or brokers.

mod aggregate;
mod entity;
mod error;
mod event;
mod factory;
mod repository;
mod rule;
mod value_object;

pub use aggregate::{AggregateRoot, AggregateState};
pub use entity::{Entity, Identity};
pub use error::DomainError;
pub use event::{DomainEvent, EventMetadata};
pub use factory::{Factory, Mapper};
pub use repository::Repository;
pub use rule::{check_rule, check_rules, BusinessRule};
pub use value_object::ValueObject;
