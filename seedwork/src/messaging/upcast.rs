//! Upcasters: typed conversions of a message type's data from one schema version to the next,
//! registered once and applied by [`Message::decode`](super::Message::decode) before a handler
//! sees the message.
//!
//! A consumer built against `v2` of a type keeps receiving `v1` messages for as long as older
//! producers (or an outbox written before the upgrade) send them. Instead of every handler
//! checking `specversion`, the version change is written once, as a function from the old type
//! to the new one:
//!
//! ```text
//! #[seedwork::upcaster]
//! fn a_v2(v1: schema::v1::EventoReservaCreada) -> schema::v2::EventoReservaCreada { … }
//! ```
//!
//! Decoding a message as `M` follows the registered upcasters from the message's version
//! (`specversion`) towards `M::VERSION`, one step at a time (`v1` → `v2` → `v3`). A message
//! newer than `M` is decoded as it is: a compatible newer version only adds fields with
//! defaults, which an older reader ignores.

use serde_json::Value;

use super::IntegrationMessage;

/// One registered version step of a message type; submitted by `#[seedwork::upcaster]`, or by
/// hand with [`inventory::submit!`] and [`Upcaster::new`].
pub struct Upcaster {
    /// The message type whose data it converts (the old version's `TYPE`).
    pub message_type: &'static str,
    /// The version it converts from.
    pub from: &'static str,
    /// The version it converts to.
    pub to: &'static str,
    /// The new version's message type (usually the same).
    pub to_type: &'static str,
    apply: fn(&Value) -> serde_json::Result<Value>,
}

impl Upcaster {
    /// A step from `from` to `to` (const, for `inventory::submit!`). `apply` reads the old
    /// version's data and returns the new version's.
    pub const fn new(
        message_type: &'static str,
        from: &'static str,
        to_type: &'static str,
        to: &'static str,
        apply: fn(&Value) -> serde_json::Result<Value>,
    ) -> Upcaster {
        Upcaster {
            message_type,
            from,
            to,
            to_type,
            apply,
        }
    }

    /// Applies the step to `data`, typed: decoded as `Old`, converted, encoded as `New`. The
    /// registration macro builds `apply` functions with it.
    pub fn typed<Old: IntegrationMessage, New: IntegrationMessage>(
        message_type: &str,
        data: &Value,
        convert: impl FnOnce(Old) -> New,
    ) -> serde_json::Result<Value> {
        convert(Old::from_data(message_type, data)?).to_data()
    }
}

impl std::fmt::Debug for Upcaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upcaster")
            .field("message_type", &self.message_type)
            .field("from", &self.from)
            .field("to_type", &self.to_type)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

inventory::collect!(Upcaster);

/// More steps than any real history has: a registration mistake that makes a cycle (`v1` →
/// `v2` → `v1`) stops here instead of looping.
const MAX_STEPS: usize = 32;

/// One version step as [`follow`] takes it: the type and version it leads to, and the
/// conversion.
pub(crate) type Step = (
    &'static str,
    &'static str,
    fn(&Value) -> serde_json::Result<Value>,
);

/// `data` of type `type_name` at `version`, brought towards `target` (or, with `None`, as far as
/// the steps go) one step at a time, `find(type, version)` answering the step from there; the
/// type and the data reached, `None` when no step applied. Shared by messages and stored events.
pub(crate) fn follow(
    type_name: &str,
    version: &str,
    target: Option<&str>,
    data: &Value,
    find: impl Fn(&str, &str) -> Option<Step>,
) -> serde_json::Result<Option<(&'static str, &'static str, Value)>> {
    let mut current: Option<(&'static str, &'static str, Value)> = None;
    for _ in 0..MAX_STEPS {
        let (type_now, version_now) = match &current {
            Some((t, v, _)) => (*t, *v),
            None => (type_name, version),
        };
        if target == Some(version_now) {
            break;
        }
        let Some((to_type, to, apply)) = find(type_now, version_now) else {
            break;
        };
        let next = apply(current.as_ref().map(|(_, _, d)| d).unwrap_or(data))?;
        current = Some((to_type, to, next));
    }
    Ok(current)
}

/// `data` of a message of `message_type` at `version`, brought up to `target` through the
/// registered upcasters as far as they go; the type and the data reached.
pub(crate) fn upcast(
    message_type: &str,
    version: &str,
    target: &str,
    data: &Value,
) -> serde_json::Result<Option<(&'static str, Value)>> {
    let reached = follow(message_type, version, Some(target), data, |t, v| {
        inventory::iter::<Upcaster>
            .into_iter()
            .find(|u| u.message_type == t && u.from == v)
            .map(|u| (u.to_type, u.to, u.apply))
    })?;
    Ok(reached.map(|(message_type, _, data)| (message_type, data)))
}
