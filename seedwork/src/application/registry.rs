use super::{BuildProblem, BusBuilder};

/// A handler registration submitted to [`inventory`] by the attribute macros.
///
/// [`BusBuilder::registered`] collects every `Registration` linked into the binary and calls
/// its `register` function, which resolves the handler's dependencies and adds it through the
/// same methods the explicit builder API uses.
pub struct Registration {
    /// The handler's path, e.g. `alpespartners::vuelos::crear_reserva`.
    pub name: &'static str,
    /// Adds the handler to a builder.
    pub register: fn(&mut BusBuilder) -> Result<(), BuildProblem>,
}

impl Registration {
    /// A registration (const, for `inventory::submit!`).
    pub const fn new(
        name: &'static str,
        register: fn(&mut BusBuilder) -> Result<(), BuildProblem>,
    ) -> Self {
        Registration { name, register }
    }
}

inventory::collect!(Registration);

/// Every registration linked into the binary.
pub(crate) fn registrations() -> impl Iterator<Item = &'static Registration> {
    inventory::iter::<Registration>.into_iter()
}

/// Converts a handler's result into `seedwork::Result` (used by the registration macros, so a
/// handler may return any error type that converts into [`Error`](crate::error::Error)).
#[doc(hidden)]
pub fn __into_result<T, E: Into<crate::error::Error>>(
    result: Result<T, E>,
) -> crate::error::Result<T> {
    result.map_err(Into::into)
}
