//! The transport's database operations, written once for every [`Dialect`]: each statement's
//! text comes from [`Dialect::TRANSPORT`], transactions open as [`Dialect::BEGIN`] says (or, for
//! a claim where the dialect has `begin_and_head`, with the claim's first statement), and the
//! only other differences are the dialect's optional subscription lock, its optional `notify`
//! statement and its cross-process listener ([`Dialect::spawn_listener`]).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::task::JoinHandle;

use seedwork::messaging::{now_millis, SubscriptionOptions, SubscriptionRefused};

use super::{
    admit, choose_up_to, kind_name, parse_kind, Backend, Claimed, ConsumerRef, EncodedMessage,
    HeadRow, Outcome, StoredMessage, TransportError, Wakers,
};
use crate::dialect::{
    column, on, open_transaction, statement, Bind, Connection, DbRow, Dialect, ManualTx, Tx,
};
use crate::shared::writer_gate::WriterGate;

/// [`Backend`] on a pool of dialect `D`.
pub(crate) struct SqlBackend<D: Dialect> {
    pool: sqlx::Pool<D::Db>,
    gate: WriterGate,
    dialect: PhantomData<fn() -> D>,
}

impl<D: Dialect> SqlBackend<D> {
    pub(crate) fn new(pool: sqlx::Pool<D::Db>) -> Self {
        SqlBackend {
            gate: D::writer_gate(&pool),
            pool,
            dialect: PhantomData,
        }
    }

    async fn begin(&self) -> Result<Tx<D>, sqlx::Error> {
        open_transaction::<D>(&self.pool, &self.gate).await
    }

    /// A claim with nothing to settle, where the dialect runs several statements in one call
    /// (SQLite): `BEGIN IMMEDIATE` with the head read, then the lease with `COMMIT` (or
    /// `COMMIT` alone when nothing is taken). Two hand-offs to the connection's thread instead
    /// of four; the protocol is the same as [`Backend::claim`]'s.
    async fn claim_in_two_calls(
        &self,
        consumer: &ConsumerRef,
        now: i64,
        scan_limit: i64,
        max: usize,
        begin_and_head: &'static str,
        lease_and_commit: &'static str,
    ) -> Outcome<std::result::Result<Vec<Claimed>, Option<i64>>> {
        let mut tx = ManualTx::<D>::acquire(&self.pool, &self.gate).await?;
        let rows = head_statement::<D>(begin_and_head, consumer, now, scan_limit)
            .fetch_all(on::<D>(tx.connection()))
            .await?;
        let (live, head) = head_from::<D>(&rows)?;
        let (chosen, wake_at) = choose_up_to(consumer.kind, consumer.id, &live, &head, now, max);
        if chosen.is_empty() {
            statement::<D>("COMMIT")
                .execute(on::<D>(tx.connection()))
                .await?;
            tx.ended();
            return Ok(Err(wake_at));
        }
        let rows = lease_statement::<D>(lease_and_commit, consumer, &chosen)?
            .fetch_all(on::<D>(tx.connection()))
            .await?;
        tx.ended();
        Ok(Ok(claimed_from::<D>(&rows, &chosen)?))
    }
}

/// Sends the dialect's wake-up for `payload` (a topic, or empty for every topic) with the
/// transaction's commit, if the dialect has one.
async fn notify<D: Dialect>(tx: &mut Connection<D>, payload: &str) -> Result<(), sqlx::Error> {
    if let Some(sql) = D::TRANSPORT.notify {
        statement::<D>(sql)
            .arg(payload.to_string())
            .execute(on::<D>(tx))
            .await?;
    }
    Ok(())
}

/// Appends `messages`, in order, to the log and to every subscription of their topics, inside
/// `tx`, with the dialect's wake-up for each topic, in one statement whatever their number.
///
/// A consumer's batch or a relay round commits hundreds of messages in one transaction; one
/// statement per message, each a hand-off to SQLite's worker thread or a round trip to
/// PostgreSQL, was most of the cost of writing them. The messages travel as one JSON
/// parameter (`TransportStatements::append_many`), and the log assigns their sequences in list
/// order.
pub(super) async fn append_all_in<D: Dialect>(
    tx: &mut Connection<D>,
    messages: &[EncodedMessage],
    now: i64,
) -> Result<(), sqlx::Error> {
    if messages.is_empty() {
        return Ok(());
    }
    let rows = statement::<D>(D::TRANSPORT.append_many)
        .arg(message_list(messages)?)
        .arg(now)
        .fetch_all(on::<D>(tx))
        .await?;
    if rows.len() != messages.len() {
        return Err(sqlx::Error::Protocol(format!(
            "appending {} messages to the topic log returned {} sequences",
            messages.len(),
            rows.len()
        )));
    }
    Ok(())
}

/// `messages` as the JSON list `TransportStatements::append_many` binds: one
/// `[topic, key, envelope, properties]` array per message, the last two as JSON text.
pub(super) fn message_list(messages: &[EncodedMessage]) -> Result<String, sqlx::Error> {
    let rows: Vec<(&str, Option<&str>, &str, &str)> = messages
        .iter()
        .map(|m| {
            (
                m.topic.as_str(),
                m.key.as_deref(),
                m.envelope.as_str(),
                m.properties.as_str(),
            )
        })
        .collect();
    serde_json::to_string(&rows).map_err(|error| sqlx::Error::Encode(Box::new(error)))
}

/// Forgets the consumers of the subscription whose lease ran out by `now`; how many are left.
async fn live_consumers<D: Dialect>(
    tx: &mut Connection<D>,
    subscription_id: i64,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let sql = &D::TRANSPORT;
    statement::<D>(sql.forget_expired)
        .arg(subscription_id)
        .arg(now)
        .execute(on::<D>(tx))
        .await?;
    let row = statement::<D>(sql.count_consumers)
        .arg(subscription_id)
        .fetch_one(on::<D>(tx))
        .await?;
    column::<D, _>(&row, "consumers")
}

/// Runs `sql` (which binds the subscription id, sequence, consumer and attempt, after
/// `visible_after` if given) and says whether it changed the one row `consumer` holds.
async fn settle<D: Dialect>(
    tx: &mut Connection<D>,
    sql: &'static str,
    visible_after: Option<i64>,
    consumer: &ConsumerRef,
    sequence: i64,
    attempt: i64,
) -> Result<bool, sqlx::Error> {
    let mut query = statement::<D>(sql);
    if let Some(visible_after) = visible_after {
        query = query.arg(visible_after);
    }
    let done = query
        .arg(consumer.subscription_id)
        .arg(sequence)
        .arg(consumer.id)
        .arg(attempt)
        .execute(on::<D>(tx))
        .await?;
    Ok(D::rows_affected(&done) == 1)
}

/// Deletes the rows `consumer` acknowledged, inside `tx`, in one statement whatever their
/// number. An acknowledgement whose row the consumer no longer holds (its lease ran out and the
/// message went to another consumer) is skipped: that delivery will be handled again, which
/// at-least-once delivery allows.
pub(super) async fn apply_acks<D: Dialect>(
    tx: &mut Connection<D>,
    consumer: &ConsumerRef,
    acks: &[(i64, i64)],
) -> Result<(), sqlx::Error> {
    if acks.is_empty() {
        return Ok(());
    }
    let (sequences, attempts): (Vec<i64>, Vec<i64>) = acks.iter().copied().unzip();
    let done = statement::<D>(D::TRANSPORT.ack_many)
        .arg(consumer.subscription_id)
        .arg(consumer.id)
        .arg(list::<D>(&sequences)?)
        .arg(list::<D>(&attempts)?)
        .execute(on::<D>(tx))
        .await?;
    let deleted = D::rows_affected(&done);
    if deleted < acks.len() as u64 {
        tracing::debug!(
            consumer = consumer.id,
            acknowledged = acks.len(),
            deleted,
            "acknowledged deliveries no longer held by this consumer"
        );
    }
    Ok(())
}

/// The head of `consumer`'s subscription: its first `scan_limit` rows in sequence order, and
/// the subscription's consumers whose lease has not run out, in attach order. One statement.
async fn read_head<D: Dialect>(
    connection: &mut Connection<D>,
    consumer: &ConsumerRef,
    now: i64,
    scan_limit: i64,
) -> Result<(Vec<i64>, Vec<HeadRow>), sqlx::Error> {
    let rows = head_statement::<D>(D::TRANSPORT.head, consumer, now, scan_limit)
        .fetch_all(on::<D>(connection))
        .await?;
    head_from::<D>(&rows)
}

/// `sql` (the head, alone or after `BEGIN`) bound for `consumer`.
fn head_statement<D: Dialect>(
    sql: &'static str,
    consumer: &ConsumerRef,
    now: i64,
    scan_limit: i64,
) -> crate::dialect::Statement<'static, D::Db> {
    statement::<D>(sql)
        .arg(consumer.subscription_id)
        .arg(scan_limit)
        .arg(now)
}

/// The live consumers and the head rows, from the head statement's rows (the live consumers
/// are empty when the head is: with no row to take, who is live does not matter).
fn head_from<D: Dialect>(rows: &[DbRow<D>]) -> Result<(Vec<i64>, Vec<HeadRow>), sqlx::Error> {
    let live = match rows.first() {
        Some(row) => parse_live(column::<D, Option<String>>(row, "live")?.as_deref())?,
        None => Vec::new(),
    };
    let head = rows
        .iter()
        .map(|row| {
            Ok(HeadRow {
                sequence: column::<D, _>(row, "sequence")?,
                key: column::<D, _>(row, "message_key")?,
                visible_after: column::<D, _>(row, "visible_after")?,
                lease_owner: column::<D, _>(row, "lease_owner")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok((live, head))
}

/// `sql` (the lease, alone or before `COMMIT`) bound to lease `chosen` to `consumer`.
fn lease_statement<D: Dialect>(
    sql: &'static str,
    consumer: &ConsumerRef,
    chosen: &[i64],
) -> Result<crate::dialect::Statement<'static, D::Db>, sqlx::Error> {
    Ok(statement::<D>(sql)
        .arg(consumer.id)
        .arg(consumer.subscription_id)
        .arg(list::<D>(chosen)?))
}

/// The claimed deliveries, in `chosen`'s order, from the lease statement's rows.
fn claimed_from<D: Dialect>(
    rows: &[DbRow<D>],
    chosen: &[i64],
) -> Result<Vec<Claimed>, sqlx::Error> {
    let mut leased = HashMap::with_capacity(rows.len());
    for row in rows {
        let sequence: i64 = column::<D, _>(row, "sequence")?;
        let deliveries: i64 = column::<D, _>(row, "deliveries")?;
        let message = StoredMessage {
            sequence,
            topic: column::<D, _>(row, "topic")?,
            key: column::<D, _>(row, "message_key")?,
            envelope: column::<D, _>(row, "envelope")?,
            properties: column::<D, _>(row, "properties")?,
        };
        leased.insert(sequence, (deliveries, message));
    }
    chosen
        .iter()
        .map(|sequence| {
            // Every chosen row is leased: the head was read in this transaction, under the
            // claim's lock, and a subscription row always has its log row.
            let (deliveries, message) = leased.remove(sequence).ok_or(sqlx::Error::RowNotFound)?;
            Ok(Claimed {
                sequence: *sequence,
                deliveries,
                message,
            })
        })
        .collect()
}

/// The `live` column: comma-separated consumer ids, sorted here into attach order (ids grow
/// with each attach).
fn parse_live(live: Option<&str>) -> Result<Vec<i64>, sqlx::Error> {
    let mut ids = live
        .unwrap_or_default()
        .split(',')
        .filter(|id| !id.is_empty())
        .map(|id| {
            id.trim()
                .parse::<i64>()
                .map_err(|error| sqlx::Error::ColumnDecode {
                    index: "live".to_string(),
                    source: Box::new(error),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    ids.sort_unstable();
    Ok(ids)
}

/// `values` as the dialect's list parameter.
fn list<D: Dialect>(values: &[i64]) -> Result<D::Sequences, sqlx::Error> {
    D::sequences(values).map_err(|error| sqlx::Error::Encode(Box::new(error)))
}

#[async_trait]
impl<D: Dialect> Backend for SqlBackend<D> {
    async fn check(&self) -> Outcome<()> {
        let mut connection = self.pool.acquire().await?;
        statement::<D>("SELECT 1")
            .execute(on::<D>(&mut connection))
            .await?;
        Ok(())
    }

    async fn append(&self, messages: &[EncodedMessage], now: i64) -> Outcome<()> {
        let mut tx = self.begin().await?;
        append_all_in::<D>(&mut tx, messages, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn attach(
        &self,
        options: &SubscriptionOptions,
        now: i64,
        lease_until: i64,
    ) -> Outcome<(i64, i64)> {
        let sql = &D::TRANSPORT;
        let mut tx = self.begin().await?;
        // Non-durable subscriptions whose processes died without detaching: nobody will
        // consume what they collect.
        statement::<D>(sql.drop_abandoned)
            .arg(now)
            .execute(on::<D>(&mut tx))
            .await?;
        let mut found = None;
        // Twice at most: on PostgreSQL a non-durable subscription's last consumer may delete it
        // between this transaction's insert (which found it) and its read.
        for _ in 0..2 {
            statement::<D>(sql.create_subscription)
                .arg(options.topic.clone())
                .arg(options.subscription.clone())
                .arg(kind_name(options.kind).to_string())
                .arg(i64::from(options.durable))
                .arg(now)
                .execute(on::<D>(&mut tx))
                .await?;
            found = statement::<D>(sql.subscription)
                .arg(options.topic.clone())
                .arg(options.subscription.clone())
                .fetch_optional(on::<D>(&mut tx))
                .await?;
            if found.is_some() {
                break;
            }
        }
        let row = found.ok_or(sqlx::Error::RowNotFound)?;
        let subscription_id: i64 = column::<D, _>(&row, "id")?;
        let kind: String = column::<D, _>(&row, "kind")?;
        let existing = parse_kind(&kind)?;
        let durable: i64 = column::<D, _>(&row, "durable")?;
        if (durable != 0) != options.durable {
            return Err(
                TransportError::from(SubscriptionRefused::DurabilityMismatch {
                    topic: options.topic.clone(),
                    subscription: options.subscription.clone(),
                    durable: durable != 0,
                })
                .into(),
            );
        }
        let live = live_consumers::<D>(&mut tx, subscription_id, now).await?;
        admit(options, existing, live)?;
        if live == 0 && existing != options.kind {
            statement::<D>(sql.set_kind)
                .arg(kind_name(options.kind).to_string())
                .arg(subscription_id)
                .execute(on::<D>(&mut tx))
                .await?;
        }
        let row = statement::<D>(sql.register)
            .arg(subscription_id)
            .arg(now)
            .arg(lease_until)
            .fetch_one(on::<D>(&mut tx))
            .await?;
        let consumer: i64 = column::<D, _>(&row, "id")?;
        tx.commit().await?;
        Ok((subscription_id, consumer))
    }

    async fn claim(
        &self,
        consumer: &ConsumerRef,
        acks: &[(i64, i64)],
        now: i64,
        scan_limit: i64,
        max: usize,
    ) -> Outcome<std::result::Result<Vec<Claimed>, Option<i64>>> {
        let sql = &D::TRANSPORT;
        if let (true, Some(begin_and_head), Some(lease_and_commit)) =
            (acks.is_empty(), sql.begin_and_head, sql.lease_and_commit)
        {
            return self
                .claim_in_two_calls(
                    consumer,
                    now,
                    scan_limit,
                    max,
                    begin_and_head,
                    lease_and_commit,
                )
                .await;
        }
        let mut tx = self.begin().await?;
        if let Some(lock) = sql.lock_subscription {
            statement::<D>(lock)
                .arg(consumer.subscription_id)
                .fetch_optional(on::<D>(&mut tx))
                .await?;
        }
        // First the acknowledgements: a key's next message may be taken in this same claim.
        apply_acks::<D>(&mut tx, consumer, acks).await?;
        let (live, head) = read_head::<D>(&mut tx, consumer, now, scan_limit).await?;
        let (chosen, wake_at) = choose_up_to(consumer.kind, consumer.id, &live, &head, now, max);
        let mut claimed = Vec::new();
        if !chosen.is_empty() {
            // One statement leases the rows and returns their messages: on PostgreSQL each
            // statement is a round trip, and the subscription stays locked meanwhile.
            let rows = lease_statement::<D>(sql.lease, consumer, &chosen)?
                .fetch_all(on::<D>(&mut tx))
                .await?;
            claimed = claimed_from::<D>(&rows, &chosen)?;
        }
        // Committed even when nothing was taken: the acknowledgements must hold.
        tx.commit().await?;
        if claimed.is_empty() {
            Ok(Err(wake_at))
        } else {
            Ok(Ok(claimed))
        }
    }

    async fn peek(
        &self,
        consumer: &ConsumerRef,
        now: i64,
        scan_limit: i64,
    ) -> Outcome<std::result::Result<(), Option<i64>>> {
        // Outside any transaction: on SQLite a read does not wait for the writer, and on
        // PostgreSQL it takes no lock. A snapshot a moment old is as good as the claim's own:
        // what commits after it wakes the consumer or is found by its next poll.
        let mut connection = self.pool.acquire().await?;
        let (live, head) = read_head::<D>(&mut connection, consumer, now, scan_limit).await?;
        match choose_up_to(consumer.kind, consumer.id, &live, &head, now, 1) {
            (taken, _) if !taken.is_empty() => Ok(Ok(())),
            (_, wake_at) => Ok(Err(wake_at)),
        }
    }

    async fn retry_later(
        &self,
        consumer: &ConsumerRef,
        sequence: i64,
        attempt: i64,
        visible_after: i64,
    ) -> Outcome<bool> {
        let mut tx = self.begin().await?;
        let sql = D::TRANSPORT.retry_later;
        let held = settle::<D>(
            &mut tx,
            sql,
            Some(visible_after),
            consumer,
            sequence,
            attempt,
        )
        .await?;
        tx.commit().await?;
        Ok(held)
    }

    async fn dead_letter(
        &self,
        consumer: &ConsumerRef,
        sequence: i64,
        attempt: i64,
        dead: &EncodedMessage,
        now: i64,
    ) -> Outcome<bool> {
        let mut tx = self.begin().await?;
        if !settle::<D>(&mut tx, D::TRANSPORT.ack, None, consumer, sequence, attempt).await? {
            return Ok(false);
        }
        append_all_in::<D>(&mut tx, std::slice::from_ref(dead), now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn heartbeat(&self, consumer: &ConsumerRef, now: i64, lease_until: i64) -> Outcome<bool> {
        let mut tx = self.begin().await?;
        let done = statement::<D>(D::TRANSPORT.heartbeat)
            .arg(lease_until)
            .arg(consumer.id)
            .arg(now)
            .execute(on::<D>(&mut tx))
            .await?;
        tx.commit().await?;
        Ok(D::rows_affected(&done) == 1)
    }

    async fn detach(&self, consumer: &ConsumerRef, acks: &[(i64, i64)]) -> Outcome<()> {
        let sql = &D::TRANSPORT;
        let mut tx = self.begin().await?;
        apply_acks::<D>(&mut tx, consumer, acks).await?;
        statement::<D>(sql.unregister)
            .arg(consumer.id)
            .execute(on::<D>(&mut tx))
            .await?;
        statement::<D>(sql.release)
            .arg(consumer.id)
            .execute(on::<D>(&mut tx))
            .await?;
        statement::<D>(sql.drop_if_unattached)
            .arg(consumer.subscription_id)
            .arg(now_millis())
            .execute(on::<D>(&mut tx))
            .await?;
        // What it held may now go to any consumer of any topic.
        notify::<D>(&mut tx, "").await?;
        tx.commit().await?;
        Ok(())
    }

    async fn unsubscribe(&self, topic: &str, name: &str, now: i64) -> Outcome<()> {
        let sql = &D::TRANSPORT;
        let mut tx = self.begin().await?;
        let Some(row) = statement::<D>(sql.subscription)
            .arg(topic.to_string())
            .arg(name.to_string())
            .fetch_optional(on::<D>(&mut tx))
            .await?
        else {
            return Ok(());
        };
        let subscription_id: i64 = column::<D, _>(&row, "id")?;
        let live = live_consumers::<D>(&mut tx, subscription_id, now).await?;
        if live > 0 {
            return Err(TransportError::from(SubscriptionRefused::InUse {
                topic: topic.to_string(),
                subscription: name.to_string(),
            })
            .into());
        }
        statement::<D>(sql.delete_subscription)
            .arg(subscription_id)
            .execute(on::<D>(&mut tx))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn purge(&self, cutoff: i64) -> Outcome<u64> {
        let mut connection = self.pool.acquire().await?;
        let done = statement::<D>(D::TRANSPORT.purge)
            .arg(cutoff)
            .execute(on::<D>(&mut connection))
            .await?;
        Ok(D::rows_affected(&done))
    }

    fn listen(&self, wakers: Arc<Wakers>) -> Option<JoinHandle<()>> {
        D::spawn_listener(&self.pool, wakers)
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use seedwork::messaging::{SubscriptionKind, SubscriptionOptions};

    use super::*;
    use crate::sqlite::Sqlite;
    use crate::transport::ConsumerRef;

    async fn held_rows(pool: &sqlx::SqlitePool) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM seedwork_subscription_messages")
            .fetch_one(pool)
            .await
            .expect("count")
    }

    /// A claim's transaction that its owner did not end (an error, a cancelled future) must
    /// not go back to the pool open: dropping it closes the connection, which rolls back what
    /// it wrote, and the next writer on the same pool (of one connection, so that it would get
    /// the same one back) begins at once.
    #[tokio::test]
    async fn a_manual_transaction_dropped_open_is_rolled_back_not_pooled() {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("manual.db"))
            .create_if_missing(true);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("pool");
        crate::SqliteStore::from_pool(pool.clone())
            .migrate()
            .await
            .expect("migrate");
        let gate = Sqlite::writer_gate(&pool);
        let insert = "BEGIN IMMEDIATE; INSERT INTO seedwork_topic_log \
            (topic, envelope, properties, published_at) VALUES ('t', '{}', '{}', 1)";
        let count = "SELECT COUNT(*) FROM seedwork_topic_log";

        let mut open = ManualTx::<Sqlite>::acquire(&pool, &gate)
            .await
            .expect("acquire");
        sqlx::query(insert)
            .execute(&mut *open.connection())
            .await
            .expect("insert");
        drop(open);

        let mut next = ManualTx::<Sqlite>::acquire(&pool, &gate)
            .await
            .expect("acquire again");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *next.connection())
            .await
            .expect("the pooled connection is not inside a transaction");
        let rows: i64 = sqlx::query_scalar(count)
            .fetch_one(&mut *next.connection())
            .await
            .expect("count");
        assert_eq!(rows, 0, "the dropped transaction's insert was rolled back");
        sqlx::query(
            "INSERT INTO seedwork_topic_log (topic, envelope, properties, published_at) \
            VALUES ('t', '{}', '{}', 2); COMMIT",
        )
        .execute(&mut *next.connection())
        .await
        .expect("insert and commit");
        next.ended();

        let rows: i64 = sqlx::query_scalar(count)
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(rows, 1, "an ended transaction's commit holds");
    }

    /// The head's `live` column comes in no particular order; the delivery rule needs attach
    /// order (Failover's first consumer, KeyShared's hash ring), so it is sorted by id.
    #[test]
    fn live_consumers_are_read_in_attach_order() {
        assert_eq!(parse_live(Some("7,3,12")).expect("parsed"), vec![3, 7, 12]);
        assert_eq!(parse_live(Some("5")).expect("parsed"), vec![5]);
        assert!(parse_live(None).expect("parsed").is_empty());
        assert!(parse_live(Some("")).expect("parsed").is_empty());
        assert!(parse_live(Some("3,x")).is_err());
    }

    /// An acknowledgement deletes the row only at the attempt it was given for: a stale one
    /// (an earlier attempt of a message this consumer holds again) leaves the row, and the
    /// list statement pairs each sequence with its own attempt.
    #[tokio::test]
    async fn an_ack_deletes_only_the_attempt_it_names() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("acks.db");
        let store = crate::SqliteStore::open(path.to_str().expect("utf-8"))
            .await
            .expect("open");
        let backend = SqlBackend::<Sqlite>::new(store.pool().clone());
        let options = SubscriptionOptions::new("t", "s").kind(SubscriptionKind::Shared);
        let (subscription_id, id) = backend.attach(&options, 1, i64::MAX).await.expect("attach");
        let consumer = ConsumerRef {
            id,
            subscription_id,
            kind: SubscriptionKind::Shared,
        };
        let message = |key: &str| EncodedMessage {
            topic: "t".into(),
            key: Some(key.into()),
            envelope: "{}".into(),
            properties: "{}".into(),
        };
        backend
            .append(&[message("a"), message("b")], 1)
            .await
            .expect("append");
        let first = backend
            .claim(&consumer, &[], 2, 100, 10)
            .await
            .expect("claim")
            .unwrap_or_default();
        assert_eq!(
            first.iter().map(|c| c.deliveries).collect::<Vec<_>>(),
            [1, 1]
        );
        let (a, b) = (first[0].sequence, first[1].sequence);
        // Both go back and are taken again: attempt 2 each.
        assert!(backend
            .retry_later(&consumer, a, 1, 0)
            .await
            .expect("retry"));
        assert!(backend
            .retry_later(&consumer, b, 1, 0)
            .await
            .expect("retry"));
        let again = backend
            .claim(&consumer, &[], 3, 100, 10)
            .await
            .expect("claim")
            .unwrap_or_default();
        assert_eq!(
            again
                .iter()
                .map(|c| (c.sequence, c.deliveries))
                .collect::<Vec<_>>(),
            [(a, 2), (b, 2)]
        );
        // A stale ack of `a` (attempt 1) next to a good one of `b` (attempt 2): only `b` goes.
        let nothing_new = backend
            .claim(&consumer, &[(a, 1), (b, 2)], 4, 100, 10)
            .await
            .expect("claim");
        assert!(nothing_new.is_err(), "nothing new to take");
        assert_eq!(held_rows(store.pool()).await, 1, "a's attempt 2 stays");
        let nothing_new = backend
            .claim(&consumer, &[(a, 2)], 5, 100, 10)
            .await
            .expect("claim");
        assert!(nothing_new.is_err(), "nothing new to take");
        assert_eq!(held_rows(store.pool()).await, 0);
    }
}
