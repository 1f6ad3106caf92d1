use std::fmt;

/// Something with an identity that outlives changes to its attributes (`Entidad`).
pub trait Entity {
    /// The identity type.
    type Id: Clone + Eq + fmt::Display + Send + Sync + 'static;

    /// The entity's id.
    fn id(&self) -> &Self::Id;
}
