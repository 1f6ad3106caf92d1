use std::fmt;

use serde::{Deserialize, Serialize};

use super::DomainError;

/// Something with an identity that outlives changes to its attributes (`Entidad`).
pub trait Entity {
    /// The identity type.
    type Id: Clone + Eq + fmt::Display + Send + Sync + 'static;

    /// The entity's id.
    fn id(&self) -> &Self::Id;
}

/// An id that can be assigned once and never changed afterwards: the Python `Entidad.id`
/// setter that raises `IdDebeSerInmutableExcepcion`.
///
/// ```
/// use seedwork::domain::{DomainError, Identity};
///
/// let mut id = Identity::<String>::unset();
/// id.assign("r-1".to_string(), "Reserva").unwrap();
/// assert_eq!(id.get(), Some(&"r-1".to_string()));
/// assert!(matches!(
///     id.assign("r-2".to_string(), "Reserva"),
///     Err(DomainError::ImmutableId { entity: "Reserva" })
/// ));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Identity<T>(Option<T>);

impl<T> Identity<T> {
    /// An id already set.
    pub fn new(id: T) -> Self {
        Identity(Some(id))
    }

    /// An id not yet assigned.
    pub fn unset() -> Self {
        Identity(None)
    }

    /// The id, if assigned.
    pub fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }

    /// Assigns the id; fails if one is already set (even the same value, as in the original).
    pub fn assign(&mut self, id: T, entity: &'static str) -> Result<(), DomainError> {
        if self.0.is_some() {
            return Err(DomainError::ImmutableId { entity });
        }
        self.0 = Some(id);
        Ok(())
    }
}

impl<T> Default for Identity<T> {
    fn default() -> Self {
        Identity::unset()
    }
}
