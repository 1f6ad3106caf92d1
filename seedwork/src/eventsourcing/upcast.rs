//! Upcasting stored events: an event is kept forever in the version it was written in, and
//! brought up to the version today's code reads each time it is read — before an aggregate
//! folds it ([`EventSourcedRepository`](super::EventSourcedRepository)) or a projection sees it
//! ([`ProjectionRunner`](super::ProjectionRunner)). The stream itself is never rewritten.
//!
//! A step is a plain function from the old payload to the new one, registered once with
//! [`event_upcaster!`](crate::event_upcaster):
//!
//! ```
//! use seedwork::eventsourcing::StoredEvent;
//!
//! #[derive(serde::Deserialize)]
//! struct DepositoV1 { monto: i64 }
//! #[derive(serde::Serialize)]
//! struct DepositoV2 { monto: i64, moneda: String }
//!
//! fn deposito_a_v2(v1: DepositoV1) -> DepositoV2 {
//!     DepositoV2 { monto: v1.monto, moneda: "COP".into() }
//! }
//! seedwork::event_upcaster!("Depositado", "v1" => "v2", deposito_a_v2);
//!
//! let stored = StoredEvent {
//!     stream_type: "cuenta".into(), stream_id: "c-1".into(), version: 1, position: 1,
//!     event_type: "Depositado".into(), event_version: "v1".into(),
//!     data: serde_json::json!({ "monto": 5 }), occurred_at: 0,
//! };
//! let upcast = stored.upcast(None).unwrap().into_owned();
//! assert_eq!((upcast.event_version.as_str(), &upcast.data["moneda"]), ("v2", &serde_json::json!("COP")));
//! ```

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::StoredEvent;
use crate::error::{Error, Result};
use crate::messaging::upcast::follow;

/// One registered version step of a stored event type: the event's data at `from` turned into
/// its data at `to`.
pub struct EventUpcaster {
    /// The event type it converts (`StoredEvent::event_type`).
    pub event_type: &'static str,
    /// The version it converts from.
    pub from: &'static str,
    /// The version it converts to.
    pub to: &'static str,
    apply: fn(&Value) -> serde_json::Result<Value>,
}

impl EventUpcaster {
    /// A step of `event_type` from `from` to `to` (const, for `inventory::submit!`); `apply`
    /// reads the old version's data and returns the new one's.
    pub const fn new(
        event_type: &'static str,
        from: &'static str,
        to: &'static str,
        apply: fn(&Value) -> serde_json::Result<Value>,
    ) -> EventUpcaster {
        EventUpcaster {
            event_type,
            from,
            to,
            apply,
        }
    }

    /// Applies a typed conversion to `data`: decoded as `Old`, converted, encoded as `New`.
    pub fn typed<Old: DeserializeOwned, New: Serialize>(
        data: &Value,
        convert: impl FnOnce(Old) -> New,
    ) -> serde_json::Result<Value> {
        serde_json::to_value(convert(Old::deserialize(data)?))
    }
}

impl std::fmt::Debug for EventUpcaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventUpcaster")
            .field("event_type", &self.event_type)
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

inventory::collect!(EventUpcaster);

impl StoredEvent {
    /// The event brought up to version `target` through the registered [`EventUpcaster`]s, or
    /// with `None` as far as they go; borrowed unchanged when no step applies. A step that
    /// cannot read the data is [`Error::Codec`].
    pub fn upcast(&self, target: Option<&str>) -> Result<Cow<'_, StoredEvent>> {
        let reached = follow(
            &self.event_type,
            &self.event_version,
            target,
            &self.data,
            |event_type, version| {
                inventory::iter::<EventUpcaster>
                    .into_iter()
                    .find(|u| u.event_type == event_type && u.from == version)
                    .map(|u| (u.event_type, u.to, u.apply))
            },
        )
        .map_err(|e| self.codec_error(e))?;
        Ok(match reached {
            Some((_, version, data)) => Cow::Owned(StoredEvent {
                stream_type: self.stream_type.clone(),
                stream_id: self.stream_id.clone(),
                version: self.version,
                position: self.position,
                event_type: self.event_type.clone(),
                event_version: version.to_string(),
                data,
                occurred_at: self.occurred_at,
            }),
            None => Cow::Borrowed(self),
        })
    }

    /// The payload as `T`, after upcasting it to `version` (the version `T` describes).
    pub fn decode<T: DeserializeOwned>(&self, version: &str) -> Result<T> {
        let decoded = match self.upcast(Some(version))? {
            Cow::Borrowed(event) => T::deserialize(&event.data),
            Cow::Owned(event) => serde_json::from_value(event.data),
        };
        decoded.map_err(|e| self.codec_error(e))
    }

    fn codec_error(&self, error: serde_json::Error) -> Error {
        Error::codec(
            format!(
                "{} event `{}` {} (stream {}, version {})",
                self.stream_type, self.event_type, self.event_version, self.stream_id, self.version
            ),
            error,
        )
    }
}

/// Registers `function`, a plain `fn(Old) -> New` over serde types, as the step of the stored
/// event type `event_type` from version `from` to `to` (see [`eventsourcing::upcast`]).
///
/// [`eventsourcing::upcast`]: crate::eventsourcing::upcast
///
/// ```text
/// seedwork::event_upcaster!("ReservaCreada", "v1" => "v2", creada_a_v2);
/// ```
#[macro_export]
macro_rules! event_upcaster {
    ($event_type:expr, $from:expr => $to:expr, $function:path $(,)?) => {
        $crate::__private::inventory::submit! {
            $crate::eventsourcing::EventUpcaster::new($event_type, $from, $to, |data| {
                $crate::eventsourcing::EventUpcaster::typed(data, $function)
            })
        }
    };
}
