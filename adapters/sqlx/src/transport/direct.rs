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

use super::backend::{append_all_in, apply_acks, message_list};
use super::{ConsumerRef, EncodedMessage, Shared, Transport};
use crate::dialect::{Connection, Dialect};
use crate::error::{Operation, SqlxError};
use crate::shared::commit_tail::{Arg, Queued};

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

/// The statement that appends `messages` as [`append`] does, for the transaction to send with
/// its commit (none for no messages); the topics written, to wake their consumers once the
/// transaction commits.
pub(crate) fn append_statement<D: Dialect>(
    messages: &[Message],
    now: i64,
) -> seedwork::Result<(BTreeSet<String>, Option<Queued<D>>)> {
    let encoded = messages
        .iter()
        .map(EncodedMessage::encode)
        .collect::<Result<Vec<_>, _>>()?;
    if encoded.is_empty() {
        return Ok((BTreeSet::new(), None));
    }
    let list = message_list(&encoded).map_err(SqlxError::statement(Operation::OutboxAppend))?;
    let append = Queued {
        sql: D::TRANSPORT.append_many,
        args: vec![Arg::Text(list), Arg::Int(now)],
        operation: Operation::OutboxAppend,
    };
    Ok((
        encoded.into_iter().map(|message| message.topic).collect(),
        Some(append),
    ))
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
    let Some(carried) = carried_by(transport, acknowledgements) else {
        return Ok(false);
    };
    apply_acks::<D>(tx, &carried.consumer, &carried.acks)
        .await
        .map_err(SqlxError::statement(Operation::Acknowledge))?;
    Ok(true)
}

/// The statement that deletes the acknowledged rows as [`acknowledge`] does, for the
/// transaction to send with its commit: `None` if `acknowledgements` are not ours to carry,
/// `Some(None)` if there is nothing to delete.
pub(crate) fn ack_statement<D: Dialect>(
    transport: &Transport,
    acknowledgements: &TransactionalAck,
) -> seedwork::Result<Option<Option<Queued<D>>>> {
    let Some(carried) = carried_by(transport, acknowledgements) else {
        return Ok(None);
    };
    if carried.acks.is_empty() {
        return Ok(Some(None));
    }
    let (sequences, attempts): (Vec<i64>, Vec<i64>) = carried.acks.iter().copied().unzip();
    let list =
        |values: &[i64]| D::sequences(values).map_err(SqlxError::list(Operation::Acknowledge));
    Ok(Some(Some(Queued {
        sql: D::TRANSPORT.ack_many,
        args: vec![
            Arg::Int(carried.consumer.subscription_id),
            Arg::Int(carried.consumer.id),
            Arg::Sequences(list(&sequences)?),
            Arg::Sequences(list(&attempts)?),
        ],
        operation: Operation::Acknowledge,
    })))
}

/// `acknowledgements` as a consumer's of `transport`, if they are.
fn carried_by<'a>(
    transport: &Transport,
    acknowledgements: &'a TransactionalAck,
) -> Option<&'a CarriedAcks> {
    let carried = acknowledgements.downcast_ref::<CarriedAcks>()?;
    std::ptr::eq(carried.transport.as_ptr(), Arc::as_ptr(&transport.shared)).then_some(carried)
}

impl Transport {
    /// Wakes this process's consumers of `topics` (after the commit that appended to them).
    pub(crate) fn wake_topics<'a>(&self, topics: impl IntoIterator<Item = &'a String>) {
        for topic in topics {
            self.shared.wakers.wake(topic);
        }
    }
}
