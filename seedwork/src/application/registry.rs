use super::BusBuilder;
use crate::error::BuildError;

/// A handler registration submitted to [`inventory`] by the attribute macros.
///
/// [`BusBuilder::registered`] collects every `Registration` linked into the binary and calls
/// its `register` function, which resolves the handler's dependencies and adds it through the
/// same methods the explicit builder API uses.
pub struct Registration {
    /// The handler's path, e.g. `alpespartners::vuelos::crear_reserva`.
    pub name: &'static str,
    /// Adds the handler to a builder.
    pub register: fn(&mut BusBuilder) -> Result<(), BuildError>,
}

impl Registration {
    /// A registration (const, for `inventory::submit!`).
    pub const fn new(
        name: &'static str,
        register: fn(&mut BusBuilder) -> Result<(), BuildError>,
    ) -> Self {
        Registration { name, register }
    }
}

inventory::collect!(Registration);

/// Every registration linked into the binary.
pub(crate) fn registrations() -> impl Iterator<Item = &'static Registration> {
    inventory::iter::<Registration>.into_iter()
}
