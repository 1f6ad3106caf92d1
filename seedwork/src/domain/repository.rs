use async_trait::async_trait;

use super::AggregateRoot;
use crate::error::Result;
use crate::uow::UnitOfWork;

/// The collection-like port through which the application loads and stores aggregates
/// (`Repositorio`).
///
/// Reads see committed state; writes go through a [`UnitOfWork`], so they commit together with
/// the domain-event handlers' work and the outbox. Implementations must:
/// - on `add`/`update`, hand the aggregate's pending events to the unit of work
///   ([`UnitOfWork::track`]), so they are dispatched at commit;
/// - on `update`, apply optimistic concurrency: replace the stored version `v` only if it still
///   is `v` (the aggregate's [`version`](AggregateRoot::version)), else fail with
///   [`Error::Conflict`](crate::Error::Conflict); on success set the aggregate's version to
///   `v + 1`.
#[async_trait]
pub trait Repository<A: AggregateRoot>: Send + Sync {
    /// Loads one aggregate by id (`obtener_por_id`).
    async fn get(&self, id: &A::Id) -> Result<Option<A>>;

    /// Loads an aggregate inside the unit of work, for a read-modify-write: it sees the unit of
    /// work's own changes and, where the backend can, locks the aggregate against concurrent
    /// writers until the commit (PostgreSQL `FOR UPDATE`; SQLite and the memory store already
    /// serialise writers). The default reads committed state, leaving the version check of
    /// [`update`](Self::update) to catch a concurrent change.
    async fn get_for_update(&self, uow: &mut UnitOfWork, id: &A::Id) -> Result<Option<A>> {
        let _ = uow;
        self.get(id).await
    }

    /// Loads every aggregate (`obtener_todos`).
    async fn list(&self) -> Result<Vec<A>>;

    /// Stores a new aggregate (`agregar`).
    async fn add(&self, uow: &mut UnitOfWork, aggregate: &mut A) -> Result<()>;

    /// Stores a changed aggregate, checking its version (`actualizar`).
    async fn update(&self, uow: &mut UnitOfWork, aggregate: &mut A) -> Result<()>;

    /// Deletes an aggregate (`eliminar`); fails with `NotFound` if there is none.
    async fn remove(&self, uow: &mut UnitOfWork, id: &A::Id) -> Result<()>;
}
