//! The domain layer: entities, aggregates, value objects, domain events, business rules and the
//! repository port through which the application reaches them.
//!
//! Nothing here knows about databases, brokers, the unit of work or the bus: a repository sees
//! the business transaction only as a [`ChangeTracker`]. The layer imports nothing of the crate
//! but its error type.

mod aggregate;
mod entity;
mod event;
mod repository;
mod rule;
mod value_object;

pub use crate::error::DomainError;
pub use aggregate::{AggregateRoot, AggregateState};
pub use entity::Entity;
pub use event::{DomainEvent, EventMetadata};
pub use repository::{ChangeTracker, Page, PageRequest, Repository};
pub use rule::{check_rule, check_rules, BusinessRule};
pub use value_object::ValueObject;
