use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use super::BuildProblem;

/// The typed dependencies an application provides to its handlers: one value per type
/// (repositories, configuration, clients), looked up by type, never by name.
#[derive(Clone, Default)]
pub struct Resources {
    entries: HashMap<TypeId, (Arc<dyn Any + Send + Sync>, &'static str)>,
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.entries.values().map(|(_, name)| name))
            .finish()
    }
}

impl Resources {
    /// No resources.
    pub fn new() -> Self {
        Resources::default()
    }

    /// Provides `value` as the `T` (which may be a trait object, e.g.
    /// `Arc<dyn Repository<Reserva>>`); replaces an earlier `T`.
    pub fn insert<T: ?Sized + Send + Sync + 'static>(&mut self, value: Arc<T>) {
        self.entries.insert(
            TypeId::of::<T>(),
            (Arc::new(value), std::any::type_name::<T>()),
        );
    }

    /// The provided `T`, if any.
    pub fn get<T: ?Sized + Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.entries
            .get(&TypeId::of::<T>())
            .and_then(|(value, _)| value.downcast_ref::<Arc<T>>())
            .cloned()
    }

    /// Whether a `T` was provided.
    pub fn contains<T: ?Sized + 'static>(&self) -> bool {
        self.entries.contains_key(&TypeId::of::<T>())
    }
}

/// A dependency of a handler, taken from the [`Resources`] when the bus is built: the extractor
/// pattern (as axum's `State`). A handler that asks for a `Dep<T>` nobody provided makes
/// [`BusBuilder::build`](super::BusBuilder::build) fail with
/// [`BuildProblem::MissingDependency`], naming both.
pub struct Dep<T: ?Sized>(pub Arc<T>);

impl<T: ?Sized> Clone for Dep<T> {
    fn clone(&self) -> Self {
        Dep(Arc::clone(&self.0))
    }
}

impl<T: ?Sized> Deref for Dep<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Dep<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Dep").field(&&*self.0).finish()
    }
}

/// Something a handler can receive from the [`Resources`].
pub trait FromResources: Sized + Clone + Send + Sync + 'static {
    /// Extracts it; `handler` names the asking handler in the error.
    fn from_resources(resources: &Resources, handler: &str) -> Result<Self, BuildProblem>;
}

impl<T: ?Sized + Send + Sync + 'static> FromResources for Dep<T> {
    fn from_resources(resources: &Resources, handler: &str) -> Result<Self, BuildProblem> {
        resources
            .get::<T>()
            .map(Dep)
            .ok_or_else(|| BuildProblem::MissingDependency {
                handler: handler.to_string(),
                dependency: std::any::type_name::<T>(),
            })
    }
}

impl<T: ?Sized + Send + Sync + 'static> FromResources for Option<Dep<T>> {
    fn from_resources(resources: &Resources, _handler: &str) -> Result<Self, BuildProblem> {
        Ok(resources.get::<T>().map(Dep))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    trait Greeter: Send + Sync {
        fn greet(&self) -> String;
    }
    struct Spanish;
    impl Greeter for Spanish {
        fn greet(&self) -> String {
            "hola".into()
        }
    }

    #[test]
    fn values_and_trait_objects_are_found_by_type() {
        let mut resources = Resources::new();
        resources.insert(Arc::new(42u32));
        resources.insert::<dyn Greeter>(Arc::new(Spanish));
        assert_eq!(*resources.get::<u32>().unwrap(), 42);
        assert_eq!(resources.get::<dyn Greeter>().unwrap().greet(), "hola");
        assert!(resources.get::<u64>().is_none());
    }

    #[test]
    fn a_missing_dependency_names_handler_and_type() {
        let err = Dep::<u64>::from_resources(&Resources::new(), "my_handler").unwrap_err();
        assert_eq!(
            err,
            BuildProblem::MissingDependency {
                handler: "my_handler".into(),
                dependency: "u64"
            }
        );
        let optional = Option::<Dep<u64>>::from_resources(&Resources::new(), "h").unwrap();
        assert!(optional.is_none());
    }
}
