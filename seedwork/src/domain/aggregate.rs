use std::sync::Arc;

use super::{DomainEvent, Entity};

/// The bookkeeping every aggregate root carries: its persisted version and the domain events
/// recorded since it was loaded. Embed one in the aggregate struct.
#[derive(Debug, Clone, Default)]
pub struct AggregateState {
    version: u64,
    pending: Vec<Arc<dyn DomainEvent>>,
}

impl AggregateState {
    /// State for a brand-new aggregate (version 0, nothing recorded).
    pub fn new() -> Self {
        AggregateState::default()
    }

    /// State for an aggregate loaded from storage at `version`.
    pub fn loaded(version: u64) -> Self {
        AggregateState {
            version,
            pending: Vec::new(),
        }
    }

    /// The version this aggregate was loaded at (0 when never stored).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Sets the version once storage accepted a change.
    pub fn set_version(&mut self, version: u64) {
        self.version = version;
    }

    /// Records a domain event to be handled when the unit of work commits.
    pub fn record(&mut self, event: impl DomainEvent) {
        self.pending.push(Arc::new(event));
    }

    /// The events recorded and not yet taken.
    pub fn pending_events(&self) -> &[Arc<dyn DomainEvent>] {
        &self.pending
    }

    /// Takes the recorded events, leaving none (`limpiar_eventos`).
    pub fn take_events(&mut self) -> Vec<Arc<dyn DomainEvent>> {
        std::mem::take(&mut self.pending)
    }
}

/// The root of a consistency boundary (`AgregacionRaiz`): an entity that records the domain
/// events its behaviour produces and carries a version for optimistic concurrency.
///
/// Implementing it takes two accessors for an embedded [`AggregateState`]:
///
/// ```
/// use seedwork::domain::{AggregateRoot, AggregateState, DomainEvent, Entity, EventMetadata};
/// # use std::any::Any;
/// # #[derive(Debug)] struct Renamed { metadata: EventMetadata }
/// # impl DomainEvent for Renamed {
/// #     fn event_name(&self) -> &'static str { "Renamed" }
/// #     fn metadata(&self) -> &EventMetadata { &self.metadata }
/// #     fn as_any(&self) -> &dyn Any { self }
/// # }
///
/// struct Customer { id: String, name: String, state: AggregateState }
///
/// impl Entity for Customer {
///     type Id = String;
///     fn id(&self) -> &String { &self.id }
/// }
/// impl AggregateRoot for Customer {
///     const TYPE: &'static str = "Customer";
///     fn state(&self) -> &AggregateState { &self.state }
///     fn state_mut(&mut self) -> &mut AggregateState { &mut self.state }
/// }
///
/// let mut customer = Customer { id: "c-1".into(), name: "Ana".into(), state: AggregateState::new() };
/// customer.record(Renamed { metadata: EventMetadata::now() });
/// assert_eq!(customer.take_events().len(), 1);
/// assert!(customer.take_events().is_empty());
/// ```
pub trait AggregateRoot: Entity + Send + Sync + 'static {
    /// The aggregate type's name, used as the table/collection and in error messages.
    const TYPE: &'static str;

    /// The embedded bookkeeping.
    fn state(&self) -> &AggregateState;

    /// The embedded bookkeeping, mutably.
    fn state_mut(&mut self) -> &mut AggregateState;

    /// The version this aggregate was loaded at.
    fn version(&self) -> u64 {
        self.state().version()
    }

    /// Records a domain event (`agregar_evento`).
    fn record(&mut self, event: impl DomainEvent)
    where
        Self: Sized,
    {
        self.state_mut().record(event);
    }

    /// Takes the recorded events (`limpiar_eventos`).
    fn take_events(&mut self) -> Vec<Arc<dyn DomainEvent>> {
        self.state_mut().take_events()
    }
}
