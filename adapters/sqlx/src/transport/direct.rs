//! Direct delivery: the outbox of a unit of work written straight into the transport's topic
//! log, in the unit of work's own transaction.
//!
//! When the transport lives in the store's database, the outbox relay's hop (claim the
//! outbox row, append it to the log in another transaction, mark it published in a third)
//! only copies rows from one table of the database to another. Appending in the committing
//! transaction itself is the same guarantee — the message exists exactly when the state change
//! does — with no relay latency and three fewer write transactions per batch. See
//! [`SqlStore::direct_transport`](crate::SqlStore::direct_transport).

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};

use seedwork::messaging::{Message, TransactionalAck};

use super::backend::{append_all_in, apply_acks};
use super::{ConsumerRef, EncodedMessage, Shared, Transport};
use crate::dialect::{Connection, Dialect};
use crate::error::{Operation, SqlxError};

/// Appends `messages` to the topic log and to every subscription of their topics inside `tx`;
/// the topics written, to wake their consumers once the transaction commits.
pub(crate) async fn append<D: Dialect>(
    tx: &mut Connection<D>,
    messages: &[Message],
    now: i64,
) -> seedwork::Result<BTreeSet<String>> {
    let encoded = messages
        .iter()
        .map(EncodedMessage::encode)
        .collect::<Result<Vec<_>, _>>()?;
    append_all_in::<D>(tx, &encoded, now)
        .await
        .map_err(SqlxError::statement(Operation::OutboxAppend))?;
    Ok(encoded.into_iter().map(|message| message.topic).collect())
}

/// A consumer's acknowledgements, for a unit of work on the store that feeds its transport
/// directly (what [`TransportConsumer::transactional_ack`](super::TransportConsumer) wraps in
/// a [`TransactionalAck`]).
pub(super) struct CarriedAcks {
    /// The consumer's transport: only a transaction delivering to this same transport is on
    /// its database. Weak, so that an acknowledgement kept around keeps nothing alive.
    pub(super) transport: Weak<Shared>,
    pub(super) consumer: ConsumerRef,
    /// (row sequence, attempt) of each delivery.
    pub(super) acks: Vec<(i64, i64)>,
}

/// Deletes the acknowledged rows inside `tx`, if `acknowledgements` are a consumer's of
/// `transport` (the one `tx` delivers to); `false` if they are not ours to carry.
pub(crate) async fn acknowledge<D: Dialect>(
    tx: &mut Connection<D>,
    transport: &Transport,
    acknowledgements: &TransactionalAck,
) -> seedwork::Result<bool> {
    let Some(carried) = acknowledgements.downcast_ref::<CarriedAcks>() else {
        return Ok(false);
    };
    if !std::ptr::eq(carried.transport.as_ptr(), Arc::as_ptr(&transport.shared)) {
        return Ok(false);
    }
    apply_acks::<D>(tx, &carried.consumer, &carried.acks)
        .await
        .map_err(SqlxError::statement(Operation::Acknowledge))?;
    Ok(true)
}

impl Transport {
    /// Wakes this process's consumers of `topics` (after the commit that appended to them).
    pub(crate) fn wake_topics<'a>(&self, topics: impl IntoIterator<Item = &'a String>) {
        for topic in topics {
            self.shared.wakers.wake(topic);
        }
    }
}
