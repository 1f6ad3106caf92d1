//! [`EventSourced`]: an aggregate whose state is the fold of its events.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::domain::{AggregateRoot, DomainEvent};

/// An aggregate whose state is the fold of its events: behaviour decides which events happen
/// and records them with [`raise`](Self::raise) (which applies them at once); loading replays
/// them through [`apply`](Self::apply), from the latest snapshot when there is one.
///
/// `Event` is usually an enum of the aggregate's events; it is the domain event the unit of
/// work dispatches, and what the stream stores (its serde form as the payload,
/// [`event_type`](Self::event_type) as the type). The aggregate itself must serialize, for
/// snapshots; keep its `AggregateState` `#[serde(skip)]`.
///
/// ```
/// use seedwork::domain::{AggregateState, EventMetadata};
/// use seedwork::eventsourcing::EventSourced;
/// use seedwork::prelude::*;
///
/// #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
/// enum Cambio { Abierta, Depositado(i64) }
///
/// #[derive(Debug, Clone, serde::Serialize, serde::Deserialize, DomainEvent)]
/// struct EventoCuenta { cambio: Cambio, metadata: EventMetadata }
///
/// #[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, AggregateRoot)]
/// struct Cuenta { id: String, saldo: i64, #[serde(skip)] state: AggregateState }
///
/// impl EventSourced for Cuenta {
///     type Event = EventoCuenta;
///     fn empty(id: &String) -> Self { Cuenta { id: id.clone(), ..Cuenta::default() } }
///     fn apply(&mut self, event: &EventoCuenta) {
///         if let Cambio::Depositado(monto) = event.cambio { self.saldo += monto }
///     }
/// }
///
/// let mut cuenta = Cuenta::empty(&"c-1".to_string());
/// cuenta.raise(EventoCuenta { cambio: Cambio::Depositado(5), metadata: EventMetadata::now() });
/// assert_eq!((cuenta.saldo, cuenta.take_events().len()), (5, 1));
/// ```
pub trait EventSourced: AggregateRoot + Serialize + DeserializeOwned + Clone {
    /// The aggregate's events.
    type Event: DomainEvent + Clone + Serialize + DeserializeOwned;

    /// The schema version of the events this code writes (`v1`); stored with each event.
    const EVENT_VERSION: &'static str = "v1";

    /// The aggregate before its first event.
    fn empty(id: &Self::Id) -> Self;

    /// Folds one event into the state. Never fails: an event is a fact, already decided.
    fn apply(&mut self, event: &Self::Event);

    /// The type an event is stored under (by default its [`DomainEvent::event_name`]).
    fn event_type(event: &Self::Event) -> String {
        event.event_name().to_string()
    }

    /// Applies `event` and records it, to be appended and dispatched at commit.
    fn raise(&mut self, event: Self::Event)
    where
        Self: Sized,
    {
        self.apply(&event);
        self.record(event);
    }
}
