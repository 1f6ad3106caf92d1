use std::any::Any;
use std::fmt::Debug;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The identity and timestamp every domain event carries (`EventoDominio.id`, `fecha_evento`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// The event's own id, unique per occurrence.
    pub event_id: Uuid,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

impl EventMetadata {
    /// Metadata for an event happening now.
    pub fn now() -> Self {
        EventMetadata {
            event_id: Uuid::new_v4(),
            occurred_at: Utc::now(),
        }
    }
}

impl Default for EventMetadata {
    fn default() -> Self {
        EventMetadata::now()
    }
}

/// Something that happened in the domain and that other parts of the same process may react to
/// inside the same business transaction.
///
/// Derive it with `#[derive(DomainEvent)]` on a struct that has an [`EventMetadata`] field
/// (named `metadata`, or marked `#[event(metadata)]`), or implement it by hand:
///
/// ```
/// use std::any::Any;
/// use seedwork::domain::{DomainEvent, EventMetadata};
///
/// #[derive(Debug, Clone)]
/// struct OrderPlaced { order_id: String, metadata: EventMetadata }
///
/// impl DomainEvent for OrderPlaced {
///     fn event_name(&self) -> &'static str { "OrderPlaced" }
///     fn metadata(&self) -> &EventMetadata { &self.metadata }
///     fn as_any(&self) -> &dyn Any { self }
/// }
///
/// let event = OrderPlaced { order_id: "o-1".into(), metadata: EventMetadata::now() };
/// assert_eq!(event.event_name(), "OrderPlaced");
/// ```
pub trait DomainEvent: Any + Debug + Send + Sync {
    /// The event's name, stable across refactorings (used in logs and routing).
    fn event_name(&self) -> &'static str;

    /// Its id and timestamp.
    fn metadata(&self) -> &EventMetadata;

    /// For downcasting to the concrete event type.
    fn as_any(&self) -> &dyn Any;

    /// The event domain-event handlers and integration mappers are also given, and looked up
    /// by: the event itself by default. An enum of an aggregate's events
    /// (`#[derive(DomainEvent)]` on an enum of `Variant(Event)`) answers the variant's event,
    /// so a handler of `ReservaCreada` runs whether the aggregate records `ReservaCreada`
    /// alone or inside its event enum — handlers of the enum itself run too.
    fn routed(&self) -> &dyn Any {
        self.as_any()
    }
}
