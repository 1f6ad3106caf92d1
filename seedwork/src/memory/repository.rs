use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;

use super::{MemoryStore, MemoryTransaction};
use crate::domain::{AggregateRoot, ChangeTracker, Page, PageRequest, Repository};
use crate::error::{Error, Result};

/// A [`Repository`] for any cloneable aggregate, on a [`MemoryStore`].
///
/// Aggregates are kept as values in the table named after [`AggregateRoot::TYPE`], with their
/// version for optimistic concurrency.
///
/// ```
/// use seedwork::prelude::*;
/// use seedwork::memory::{MemoryRepository, MemoryStore};
/// # use seedwork::domain::{AggregateState, Entity};
/// #[derive(Clone)]
/// struct Counter { id: String, value: u32, state: AggregateState }
/// # impl Entity for Counter { type Id = String; fn id(&self) -> &String { &self.id } }
/// # impl AggregateRoot for Counter {
/// #     const TYPE: &'static str = "Counter";
/// #     fn state(&self) -> &AggregateState { &self.state }
/// #     fn state_mut(&mut self) -> &mut AggregateState { &mut self.state }
/// # }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let counters = MemoryRepository::<Counter>::new(store.clone());
/// let bus = Bus::builder().store(std::sync::Arc::new(store)).build()?;
///
/// let mut uow = bus.unit_of_work().await?;
/// let mut counter = Counter { id: "c".into(), value: 1, state: AggregateState::new() };
/// counters.add(&mut uow, &mut counter).await?;
/// uow.commit().await?;
///
/// let stored = counters.get(&"c".to_string()).await?.expect("committed");
/// assert_eq!((stored.value, stored.version()), (1, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
pub struct MemoryRepository<A> {
    store: MemoryStore,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A> Clone for MemoryRepository<A> {
    fn clone(&self) -> Self {
        MemoryRepository {
            store: self.store.clone(),
            _aggregate: PhantomData,
        }
    }
}

impl<A: AggregateRoot> fmt::Debug for MemoryRepository<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRepository")
            .field("aggregate", &A::TYPE)
            .finish()
    }
}

impl<A: AggregateRoot + Clone> MemoryRepository<A> {
    /// A repository over `store`.
    pub fn new(store: MemoryStore) -> Self {
        MemoryRepository {
            store,
            _aggregate: PhantomData,
        }
    }

    /// Loads an aggregate as the unit of work sees it (its own uncommitted writes included).
    pub async fn get_in(&self, uow: &mut dyn ChangeTracker, id: &A::Id) -> Result<Option<A>> {
        let tx = uow.transaction::<MemoryTransaction>()?;
        Ok(tx.row(A::TYPE, &id.to_string()).and_then(materialise::<A>))
    }

    async fn write(
        &self,
        uow: &mut dyn ChangeTracker,
        aggregate: &mut A,
        expected: u64,
    ) -> Result<()> {
        let id = aggregate.id().to_string();
        let new_version = expected + 1;
        let mut stored = aggregate.clone();
        stored.take_events();
        stored.state_mut().set_version(new_version);
        let tx = uow.transaction::<MemoryTransaction>()?;
        match tx.put_checked(A::TYPE, &id, expected, new_version, Arc::new(stored)) {
            Ok(()) => {}
            Err(0) => return Err(Error::not_found(A::TYPE, id)),
            Err(_) => {
                return Err(Error::Conflict {
                    aggregate: A::TYPE,
                    id,
                    expected,
                })
            }
        }
        aggregate.state_mut().set_version(new_version);
        uow.track(aggregate);
        Ok(())
    }
}

fn materialise<A: AggregateRoot + Clone>(row: super::store::Row) -> Option<A> {
    let mut aggregate = row.value.downcast_ref::<A>()?.clone();
    aggregate.state_mut().set_version(row.version);
    Some(aggregate)
}

#[async_trait]
impl<A: AggregateRoot + Clone> Repository<A> for MemoryRepository<A> {
    async fn get(&self, id: &A::Id) -> Result<Option<A>> {
        Ok(self
            .store
            .row(A::TYPE, &id.to_string())
            .and_then(materialise::<A>))
    }

    async fn get_for_update(&self, uow: &mut dyn ChangeTracker, id: &A::Id) -> Result<Option<A>> {
        self.get_in(uow, id).await
    }

    async fn list(&self, page: &PageRequest) -> Result<Page<A>> {
        let items = self
            .store
            .rows_after(A::TYPE, page.cursor(), page.limit() + 1)
            .into_iter()
            .filter_map(materialise::<A>)
            .collect();
        Ok(Page::from_overfetch(items, page, |a: &A| {
            a.id().to_string()
        }))
    }

    async fn add(&self, uow: &mut dyn ChangeTracker, aggregate: &mut A) -> Result<()> {
        let id = aggregate.id().to_string();
        let tx = uow.transaction::<MemoryTransaction>()?;
        if tx.row(A::TYPE, &id).is_some() {
            return Err(Error::Conflict {
                aggregate: A::TYPE,
                id,
                expected: 0,
            });
        }
        self.write(uow, aggregate, 0).await
    }

    async fn update(&self, uow: &mut dyn ChangeTracker, aggregate: &mut A) -> Result<()> {
        let expected = aggregate.version();
        if expected == 0 {
            return Err(Error::not_found(A::TYPE, aggregate.id()));
        }
        self.write(uow, aggregate, expected).await
    }

    async fn remove(&self, uow: &mut dyn ChangeTracker, id: &A::Id) -> Result<()> {
        let tx = uow.transaction::<MemoryTransaction>()?;
        if tx.delete(A::TYPE, &id.to_string()) {
            Ok(())
        } else {
            Err(Error::not_found(A::TYPE, id))
        }
    }
}
