use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;

use super::{AggregateRoot, DomainError, DomainEvent};
use crate::error::{Error, Result};

/// What a repository writes through: the business transaction as the domain sees it.
///
/// The unit of work implements it; a repository receives `&mut dyn ChangeTracker` instead of
/// the whole unit of work, so the domain layer knows nothing of commits, outboxes or buses. A
/// repository does two things with it: it runs its statements in the backend's open
/// transaction (`transaction::<T>()`), and it hands over the pending domain
/// events of the aggregates it stores (`track(aggregate)`) so that they are dispatched at
/// commit.
pub trait ChangeTracker: Send {
    /// Takes domain events raised by the aggregate `aggregate_type`/`aggregate_id`, for
    /// dispatch at commit. Prefer `track`, which takes them from the aggregate.
    fn track_events(
        &mut self,
        aggregate_type: &'static str,
        aggregate_id: String,
        events: Vec<Arc<dyn DomainEvent>>,
    );

    /// The backend's open transaction, for a repository of that backend to downcast; call
    /// `transaction::<T>()` on the tracker, which names the mismatch as an error.
    fn backend_transaction(&mut self) -> &mut dyn Any;
}

impl dyn ChangeTracker + '_ {
    /// Takes the aggregate's pending domain events into the business transaction
    /// (`registrar_batch`). Repositories call it from `add` and `update`.
    pub fn track<A: AggregateRoot>(&mut self, aggregate: &mut A) {
        let events = aggregate.take_events();
        if !events.is_empty() {
            self.track_events(A::TYPE, aggregate.id().to_string(), events);
        }
    }

    /// The backend transaction as its concrete type `T`. A repository of another backend gets
    /// [`Error::UnitOfWork`] instead of a panic.
    pub fn transaction<T: Any>(&mut self) -> Result<&mut T> {
        self.backend_transaction()
            .downcast_mut::<T>()
            .ok_or_else(|| {
                Error::UnitOfWork(format!(
                    "this unit of work runs on another backend than `{}`",
                    std::any::type_name::<T>()
                ))
            })
    }
}

/// Which page of a listing to read: at most [`limit`](Self::limit) items whose id comes after
/// the [`cursor`](Self::cursor).
///
/// Listings are ordered by the aggregate id (as text) and paged by that id (keyset
/// pagination): a page costs the same however far into the listing it is, and an aggregate
/// added or removed meanwhile does not shift the others between pages.
///
/// ```
/// use seedwork::domain::PageRequest;
///
/// let first = PageRequest::first(20)?;
/// assert_eq!((first.limit(), first.cursor()), (20, None));
/// let second = first.after("r-20");
/// assert_eq!(second.cursor(), Some("r-20"));
/// assert!(PageRequest::first(0).is_err());
/// assert!(PageRequest::first(PageRequest::MAX_LIMIT + 1).is_err());
/// # Ok::<(), seedwork::domain::DomainError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    limit: usize,
    after: Option<String>,
}

impl PageRequest {
    /// The page size used when a caller does not choose one.
    pub const DEFAULT_LIMIT: usize = 50;
    /// The largest page a caller may ask for.
    pub const MAX_LIMIT: usize = 500;

    /// The first page of `limit` items; `limit` must be between 1 and [`Self::MAX_LIMIT`].
    pub fn first(limit: usize) -> Result<Self, DomainError> {
        if limit == 0 || limit > Self::MAX_LIMIT {
            return Err(DomainError::invalid_value(
                "limit",
                format!("must be between 1 and {}", Self::MAX_LIMIT),
            ));
        }
        Ok(PageRequest { limit, after: None })
    }

    /// The same page size, starting after the item whose id is `cursor` (the
    /// [`Page::next`] of the previous page).
    pub fn after(self, cursor: impl Into<String>) -> Self {
        PageRequest {
            after: Some(cursor.into()),
            ..self
        }
    }

    /// How many items the page holds at most.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The id after which the page starts, if it is not the first.
    pub fn cursor(&self) -> Option<&str> {
        self.after.as_deref()
    }
}

impl Default for PageRequest {
    /// The first page of [`PageRequest::DEFAULT_LIMIT`] items.
    fn default() -> Self {
        PageRequest {
            limit: Self::DEFAULT_LIMIT,
            after: None,
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in id order.
    pub items: Vec<T>,
    /// The cursor of the next page, or `None` when this page is the last.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` items read in id order: the extra item, if there is
    /// one, only says that a next page exists. `id` gives an item's id as text.
    pub fn from_overfetch(
        mut items: Vec<T>,
        request: &PageRequest,
        id: impl Fn(&T) -> String,
    ) -> Self {
        let next = if items.len() > request.limit() {
            items.truncate(request.limit());
            items.last().map(id)
        } else {
            None
        };
        Page { items, next }
    }

    /// Converts the items, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

/// The collection-like port through which the application loads and stores aggregates
/// (`Repositorio`).
///
/// Reads see committed state; writes go through the business transaction (a
/// [`ChangeTracker`], which is how a repository sees the unit of work), so they commit together
/// with the domain-event handlers' work and the outbox. Call sites pass the unit of work as it
/// is: `repository.add(uow, &mut aggregate)`. Implementations must:
/// - on `add`/`update`, hand the aggregate's pending events over with
///   `uow.track(aggregate)` (on the [`ChangeTracker`]), so they are dispatched at commit;
/// - on `update`, apply optimistic concurrency: replace the stored version `v` only if it still
///   is `v` (the aggregate's [`version`](AggregateRoot::version)), else fail with
///   [`Error::Conflict`](crate::error::Error::Conflict); on success set the aggregate's version to
///   `v + 1`.
#[async_trait]
pub trait Repository<A: AggregateRoot>: Send + Sync {
    /// Loads one aggregate by id (`obtener_por_id`).
    async fn get(&self, id: &A::Id) -> Result<Option<A>>;

    /// Loads an aggregate inside the business transaction, for a read-modify-write: it sees the
    /// transaction's own changes and, where the backend can, locks the aggregate against
    /// concurrent writers until the commit (PostgreSQL `FOR UPDATE`; SQLite and the memory store
    /// already serialise writers). The default reads committed state, leaving the version check
    /// of [`update`](Self::update) to catch a concurrent change.
    async fn get_for_update(&self, uow: &mut dyn ChangeTracker, id: &A::Id) -> Result<Option<A>> {
        let _ = uow;
        self.get(id).await
    }

    /// Loads one page of aggregates, in id order (`obtener_todos`, bounded).
    async fn list(&self, page: &PageRequest) -> Result<Page<A>>;

    /// Stores a new aggregate (`agregar`).
    async fn add(&self, uow: &mut dyn ChangeTracker, aggregate: &mut A) -> Result<()>;

    /// Stores a changed aggregate, checking its version (`actualizar`).
    async fn update(&self, uow: &mut dyn ChangeTracker, aggregate: &mut A) -> Result<()>;

    /// Deletes an aggregate (`eliminar`); fails with `NotFound` if there is none.
    async fn remove(&self, uow: &mut dyn ChangeTracker, id: &A::Id) -> Result<()>;
}
