//! The saga store of the memory backend: instances as values of one table.

use std::sync::Arc;

use async_trait::async_trait;

use super::store::Row;
use super::{MemoryStore, MemoryTransaction};
use crate::domain::ChangeTracker;
use crate::error::{Error, Result};
use crate::saga::{SagaKey, SagaRecord, SagaStore};

const TABLE: &str = "seedwork_sagas";
/// The aggregate name conflicts report.
const KIND: &str = "saga";

/// The row key of an instance: the saga's name and the correlation id, split by a character
/// neither holds in practice (and which sorts the instances of a saga together).
fn key(saga: &str, correlation_id: &str) -> String {
    format!("{saga}\u{1f}{correlation_id}")
}

fn materialise(row: Row) -> Option<SagaRecord> {
    let mut record = row.value.downcast_ref::<SagaRecord>()?.clone();
    record.version = row.version;
    Some(record)
}

#[async_trait]
impl SagaStore for MemoryStore {
    async fn load(
        &self,
        uow: &mut dyn ChangeTracker,
        saga: &str,
        correlation_id: &str,
    ) -> Result<Option<SagaRecord>> {
        let tx = uow.transaction::<MemoryTransaction>()?;
        Ok(tx
            .row(TABLE, &key(saga, correlation_id))
            .and_then(materialise))
    }

    async fn save(&self, uow: &mut dyn ChangeTracker, record: &mut SagaRecord) -> Result<()> {
        let id = key(&record.saga, &record.correlation_id);
        let expected = record.version;
        let tx = uow.transaction::<MemoryTransaction>()?;
        let mut stored = record.clone();
        stored.version = expected + 1;
        tx.put_checked(TABLE, &id, expected, expected + 1, Arc::new(stored))
            .map_err(|_| Error::Conflict {
                aggregate: KIND,
                id: format!("{}/{}", record.saga, record.correlation_id),
                expected,
            })?;
        record.version = expected + 1;
        Ok(())
    }

    async fn get(&self, saga: &str, correlation_id: &str) -> Result<Option<SagaRecord>> {
        Ok(self
            .row(TABLE, &key(saga, correlation_id))
            .and_then(materialise))
    }

    async fn find(&self, correlation_id: &str) -> Result<Vec<SagaRecord>> {
        Ok(self
            .rows_after(TABLE, None, usize::MAX)
            .into_iter()
            .filter_map(materialise)
            .filter(|record| record.correlation_id == correlation_id)
            .collect())
    }

    async fn due(&self, now: i64, limit: usize) -> Result<Vec<SagaKey>> {
        let mut due: Vec<(i64, SagaKey)> = self
            .rows_after(TABLE, None, usize::MAX)
            .into_iter()
            .filter_map(materialise)
            .filter_map(|record| {
                let deadline = record.deadline.filter(|deadline| *deadline <= now)?;
                Some((
                    deadline,
                    SagaKey {
                        saga: record.saga,
                        correlation_id: record.correlation_id,
                    },
                ))
            })
            .collect();
        due.sort();
        Ok(due.into_iter().take(limit).map(|(_, key)| key).collect())
    }
}
