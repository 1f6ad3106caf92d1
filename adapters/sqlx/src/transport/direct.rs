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

use seedwork::messaging::Message;

use super::backend::append_all_in;
use super::{EncodedMessage, Transport};
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

impl Transport {
    /// Wakes this process's consumers of `topics` (after the commit that appended to them).
    pub(crate) fn wake_topics<'a>(&self, topics: impl IntoIterator<Item = &'a String>) {
        for topic in topics {
            self.shared.wakers.wake(topic);
        }
    }
}
