/// A value object: immutable, compared by value, with no identity of its own (`ObjetoValor`).
///
/// The trait is a marker that states intent; the bounds make the usual value semantics
/// mandatory (clone freely, compare by value).
pub trait ValueObject: Clone + PartialEq + std::fmt::Debug {}
