//! The event store of the memory backend: each stream one value, plus a log by global
//! position and the snapshots.

use std::sync::Arc;

use async_trait::async_trait;

use super::store::Row;
use super::{MemoryStore, MemoryTransaction};
use crate::domain::ChangeTracker;
use crate::error::{Error, Result};
use crate::eventsourcing::{EventStore, NewEvent, Snapshot, StoredEvent};

const STREAMS: &str = "seedwork_event_streams";
const LOG: &str = "seedwork_event_log";
const HEAD: &str = "seedwork_event_head";
const SNAPSHOTS: &str = "seedwork_snapshots";

fn stream_key(stream_type: &str, stream_id: &str) -> String {
    format!("{stream_type}\u{1f}{stream_id}")
}

/// Positions as fixed-width text, so the log's key order is position order.
fn position_key(position: u64) -> String {
    format!("{position:020}")
}

fn events(row: Option<Row>) -> Vec<StoredEvent> {
    row.and_then(|row| row.value.downcast_ref::<Vec<StoredEvent>>().cloned())
        .unwrap_or_default()
}

/// The events of a stream's row with a version above `after`.
fn after(row: Option<Row>, after: u64) -> Vec<StoredEvent> {
    events(row)
        .into_iter()
        .filter(|e| e.version > after)
        .collect()
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append(
        &self,
        uow: &mut dyn ChangeTracker,
        stream_type: &str,
        stream_id: &str,
        expected: u64,
        new: &[NewEvent],
    ) -> Result<u64> {
        let key = stream_key(stream_type, stream_id);
        let tx = uow.transaction::<MemoryTransaction>()?;
        let mut stream = events(tx.row(STREAMS, &key));
        let current = stream.len() as u64;
        if current != expected {
            return Err(Error::Conflict {
                aggregate: "event stream",
                id: format!("{stream_type}/{stream_id}"),
                expected,
            });
        }
        // Transactions are serialised, so the head read here is the one this commit follows.
        let head = tx.row(HEAD, "").map(|row| row.version).unwrap_or(0);
        let mut position = head;
        for (n, event) in new.iter().enumerate() {
            position += 1;
            let stored = StoredEvent {
                stream_type: stream_type.to_string(),
                stream_id: stream_id.to_string(),
                version: expected + n as u64 + 1,
                position,
                event_type: event.event_type.clone(),
                event_version: event.event_version.clone(),
                data: event.data.clone(),
                occurred_at: event.occurred_at,
            };
            tx.put_checked(LOG, &position_key(position), 0, 1, Arc::new(stored.clone()))
                .map_err(|_| Error::UnitOfWork("the event log's head moved".into()))?;
            stream.push(stored);
        }
        let version = stream.len() as u64;
        tx.put_checked(HEAD, "", head, position, Arc::new(()))
            .map_err(|_| Error::UnitOfWork("the event log's head moved".into()))?;
        tx.put_checked(STREAMS, &key, current, version, Arc::new(stream))
            .map_err(|_| Error::Conflict {
                aggregate: "event stream",
                id: format!("{stream_type}/{stream_id}"),
                expected,
            })?;
        Ok(version)
    }

    async fn load(
        &self,
        stream_type: &str,
        stream_id: &str,
        after: u64,
    ) -> Result<Vec<StoredEvent>> {
        Ok(self::after(
            self.row(STREAMS, &stream_key(stream_type, stream_id)),
            after,
        ))
    }

    async fn load_in(
        &self,
        uow: &mut dyn ChangeTracker,
        stream_type: &str,
        stream_id: &str,
        after: u64,
    ) -> Result<Vec<StoredEvent>> {
        let tx = uow.transaction::<MemoryTransaction>()?;
        Ok(self::after(
            tx.row(STREAMS, &stream_key(stream_type, stream_id)),
            after,
        ))
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        let after = position_key(after);
        Ok(self
            .rows_after(LOG, Some(&after), limit)
            .into_iter()
            .filter_map(|row| row.value.downcast_ref::<StoredEvent>().cloned())
            .collect())
    }

    async fn last_position(&self) -> Result<u64> {
        Ok(self.row(HEAD, "").map_or(0, |row| row.version))
    }

    async fn save_snapshot(
        &self,
        uow: &mut dyn ChangeTracker,
        stream_type: &str,
        stream_id: &str,
        snapshot: &Snapshot,
    ) -> Result<()> {
        let key = stream_key(stream_type, stream_id);
        let tx = uow.transaction::<MemoryTransaction>()?;
        let current = tx.row(SNAPSHOTS, &key).map(|row| row.version).unwrap_or(0);
        if snapshot.version <= current {
            return Ok(());
        }
        tx.put_checked(
            SNAPSHOTS,
            &key,
            current,
            snapshot.version,
            Arc::new(snapshot.clone()),
        )
        .map_err(|_| Error::UnitOfWork("a snapshot moved under its writer".into()))
    }

    async fn load_snapshot(&self, stream_type: &str, stream_id: &str) -> Result<Option<Snapshot>> {
        Ok(self
            .row(SNAPSHOTS, &stream_key(stream_type, stream_id))
            .and_then(|row| row.value.downcast_ref::<Snapshot>().cloned()))
    }
}
