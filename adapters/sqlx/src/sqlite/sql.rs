//! The statements in SQLite's SQL. Lists are bound as one JSON array text and read back with
//! `json_each`.

use crate::dialect::{EventAppend, Statements, TransportStatements};

pub(super) const STATEMENTS: Statements = Statements {
    scan_outbox: "SELECT o.sequence, o.message_key, o.lease_owner, o.lease_until \
        FROM seedwork_outbox o WHERE o.published_at IS NULL AND o.parked_at IS NULL \
        AND NOT EXISTS (SELECT 1 FROM seedwork_outbox p WHERE p.parked_at IS NOT NULL \
        AND p.published_at IS NULL AND p.message_key = o.message_key \
        AND p.sequence < o.sequence) \
        ORDER BY o.sequence LIMIT ?",
    key_history: "SELECT sequence, message_key FROM seedwork_outbox \
        WHERE published_at IS NULL AND sequence <= ? \
        AND message_key IN (SELECT value FROM json_each(?))",
    lease: "UPDATE seedwork_outbox SET lease_owner = ?, lease_until = ? \
        WHERE sequence IN (SELECT value FROM json_each(?))",
    fetch_claimed: "SELECT sequence, topic, message_key, envelope, properties \
        FROM seedwork_outbox WHERE sequence IN (SELECT value FROM json_each(?)) \
        ORDER BY sequence",
    mark_published: "UPDATE seedwork_outbox SET published_at = ?, \
        lease_owner = NULL, lease_until = NULL WHERE lease_owner = ? AND published_at IS NULL \
        AND sequence IN (SELECT value FROM json_each(?))",
    release: "UPDATE seedwork_outbox SET lease_owner = NULL, \
        lease_until = NULL WHERE lease_owner = ? AND published_at IS NULL \
        AND sequence IN (SELECT value FROM json_each(?))",
    renew: "UPDATE seedwork_outbox SET lease_until = ? \
        WHERE lease_owner = ? AND published_at IS NULL \
        AND sequence IN (SELECT value FROM json_each(?))",
    record_failure: "UPDATE seedwork_outbox SET attempts = attempts + 1, last_error = ?, \
        parked_at = CASE WHEN attempts + 1 >= ? THEN ? ELSE NULL END, \
        lease_owner = NULL, lease_until = NULL \
        WHERE sequence = ? AND lease_owner = ? AND published_at IS NULL AND parked_at IS NULL \
        RETURNING parked_at",
    parked: "SELECT sequence, topic, message_key, envelope, properties, attempts, last_error, \
        parked_at FROM seedwork_outbox \
        WHERE parked_at IS NOT NULL AND published_at IS NULL AND sequence > ? \
        ORDER BY sequence LIMIT ?",
    redrive: "UPDATE seedwork_outbox SET parked_at = NULL, attempts = 0, last_error = NULL, \
        lease_owner = NULL, lease_until = NULL \
        WHERE sequence = ? AND parked_at IS NOT NULL AND published_at IS NULL",
    discard: "DELETE FROM seedwork_outbox \
        WHERE sequence = ? AND parked_at IS NOT NULL AND published_at IS NULL",
    lag: "SELECT MIN(CASE WHEN parked_at IS NULL THEN created_at END) AS oldest, \
        COUNT(CASE WHEN parked_at IS NULL THEN 1 END) AS pending, \
        COUNT(parked_at) AS parked FROM seedwork_outbox WHERE published_at IS NULL",
    purge: "DELETE FROM seedwork_outbox WHERE published_at IS NOT NULL AND published_at <= ?",
    pending: "SELECT COUNT(*) AS pending FROM seedwork_outbox WHERE published_at IS NULL",
    insert_outbox: "INSERT INTO seedwork_outbox \
        (message_id, topic, message_key, envelope, properties, created_at) \
        VALUES (?, ?, ?, ?, ?, ?)",
    insert_inbox: "INSERT INTO seedwork_inbox \
        (consumer, message_id, processed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
    // `WHERE true` tells SQLite's parser that `ON CONFLICT` is the upsert clause, not a join's.
    insert_inbox_many: "INSERT INTO seedwork_inbox (consumer, message_id, processed_at) \
        SELECT ?1, value, ?3 FROM json_each(?2) WHERE true \
        ON CONFLICT DO NOTHING RETURNING message_id",
    purge_inbox: "DELETE FROM seedwork_inbox WHERE processed_at <= ?",
    aggregate_get: AGGREGATE_GET,
    // Writers are serialised by `BEGIN IMMEDIATE`: a plain read inside the transaction is
    // already stable.
    aggregate_get_for_update: AGGREGATE_GET,
    aggregate_list: "SELECT version, data FROM seedwork_aggregates \
        WHERE aggregate_type = ?1 AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3",
    aggregate_insert: "INSERT INTO seedwork_aggregates \
        (aggregate_type, id, version, data, updated_at) VALUES (?, ?, 1, ?, ?) \
        ON CONFLICT DO NOTHING",
    aggregate_update: "UPDATE seedwork_aggregates \
        SET version = version + 1, data = ?, updated_at = ? \
        WHERE aggregate_type = ? AND id = ? AND version = ?",
    aggregate_delete: "DELETE FROM seedwork_aggregates WHERE aggregate_type = ? AND id = ?",
    saga_get: SAGA_GET,
    // Writers are serialised by `BEGIN IMMEDIATE`, as for aggregates.
    saga_get_for_update: SAGA_GET,
    saga_insert: "INSERT INTO seedwork_sagas \
        (saga, correlation_id, version, status, deadline_at, data, updated_at) \
        VALUES (?, ?, 1, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    saga_update: "UPDATE seedwork_sagas SET version = version + 1, status = ?, \
        deadline_at = ?, data = ?, updated_at = ? \
        WHERE saga = ? AND correlation_id = ? AND version = ?",
    saga_find: "SELECT version, data FROM seedwork_sagas WHERE correlation_id = ? ORDER BY saga",
    saga_due: "SELECT saga, correlation_id FROM seedwork_sagas \
        WHERE deadline_at IS NOT NULL AND deadline_at <= ? \
        ORDER BY deadline_at, saga, correlation_id LIMIT ?",
    // One writer at a time, so the highest position is the last one committed. (The WHERE
    // also tells SQLite's parser that ON CONFLICT belongs to the INSERT.)
    event_append: EventAppend::AfterHighest(
        "INSERT INTO seedwork_events (position, stream_type, stream_id, version, event_type, \
         event_version, data, occurred_at, recorded_at) \
         SELECT COALESCE((SELECT MAX(position) FROM seedwork_events), 0) + 1, \
                ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 \
         WHERE (SELECT COALESCE(MAX(version), 0) FROM seedwork_events \
                WHERE stream_type = ?1 AND stream_id = ?2) = ?3 - 1 \
         ON CONFLICT DO NOTHING",
    ),
    event_load: "SELECT position, version, event_type, event_version, data, occurred_at \
        FROM seedwork_events \
        WHERE stream_type = ? AND stream_id = ? AND version > ? ORDER BY version",
    event_read_all: "SELECT position, stream_type, stream_id, version, event_type, event_version, data, occurred_at FROM seedwork_events \
        WHERE position > ? ORDER BY position LIMIT ?",
    event_last_position: "SELECT COALESCE(MAX(position), 0) AS position FROM seedwork_events",
    snapshot_save: "INSERT INTO seedwork_snapshots (stream_type, stream_id, version, state, \
        updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (stream_type, stream_id) \
        DO UPDATE SET version = excluded.version, state = excluded.state, \
        updated_at = excluded.updated_at WHERE seedwork_snapshots.version < excluded.version",
    snapshot_load: "SELECT version, state FROM seedwork_snapshots \
        WHERE stream_type = ? AND stream_id = ?",
};

const AGGREGATE_GET: &str =
    "SELECT version, data FROM seedwork_aggregates WHERE aggregate_type = ? AND id = ?";

/// The head of a subscription (see `TransportStatements::head`). A macro so that the claim's
/// `BEGIN IMMEDIATE; …` form is built from the same text. `live` is an uncorrelated
/// subquery: SQLite evaluates it once per statement.
macro_rules! head {
    () => {
        "SELECT sequence, message_key, visible_after, lease_owner, \
        (SELECT group_concat(id) FROM seedwork_consumers \
        WHERE subscription_id = ?1 AND lease_until > ?3) AS live \
        FROM seedwork_subscription_messages WHERE subscription_id = ?1 \
        ORDER BY sequence LIMIT ?2"
    };
}

/// The lease of chosen rows (see `TransportStatements::lease`), also used as `…; COMMIT`.
/// SQLite's RETURNING cannot name another table, but its subqueries can read one.
macro_rules! lease {
    () => {
        "UPDATE seedwork_subscription_messages \
        SET lease_owner = ?, deliveries = deliveries + 1 \
        WHERE subscription_id = ? AND sequence IN (SELECT value FROM json_each(?)) \
        RETURNING sequence, deliveries, message_key, \
        (SELECT l.topic FROM seedwork_topic_log l \
        WHERE l.sequence = seedwork_subscription_messages.sequence) AS topic, \
        (SELECT l.envelope FROM seedwork_topic_log l \
        WHERE l.sequence = seedwork_subscription_messages.sequence) AS envelope, \
        (SELECT l.properties FROM seedwork_topic_log l \
        WHERE l.sequence = seedwork_subscription_messages.sequence) AS properties"
    };
}

/// Every transport transaction opens with `BEGIN IMMEDIATE` ([`Dialect::BEGIN`]), so SQLite's
/// single writer lock already serialises claims: no row lock, and no cross-process wake-up.
///
/// [`Dialect::BEGIN`]: crate::dialect::Dialect::BEGIN
pub(super) const TRANSPORT: TransportStatements = TransportStatements {
    // `json_each` walks the list in order and `ORDER BY key` keeps it so: the log's
    // AUTOINCREMENT sequence is assigned row by row, in list order.
    // The fan-out to the subscriptions is the log's trigger (migration 0007).
    append_many: "INSERT INTO seedwork_topic_log \
        (topic, message_key, envelope, properties, published_at) \
        SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
        json_extract(value, '$[2]'), json_extract(value, '$[3]'), ?2 \
        FROM json_each(?1) ORDER BY key RETURNING sequence",
    notify: None,
    create_subscription: "INSERT INTO seedwork_subscriptions \
        (topic, name, kind, durable, created_sequence, created_at) \
        VALUES (?, ?, ?, ?, (SELECT COALESCE(MAX(sequence), 0) FROM seedwork_topic_log), ?) \
        ON CONFLICT (topic, name) DO NOTHING",
    subscription: "SELECT id, kind, durable FROM seedwork_subscriptions \
        WHERE topic = ? AND name = ?",
    lock_subscription: None,
    forget_expired: "DELETE FROM seedwork_consumers \
        WHERE subscription_id = ? AND lease_until <= ?",
    count_consumers: "SELECT COUNT(*) AS consumers FROM seedwork_consumers \
        WHERE subscription_id = ?",
    set_kind: "UPDATE seedwork_subscriptions SET kind = ? WHERE id = ?",
    register: "INSERT INTO seedwork_consumers \
        (subscription_id, attached_at, lease_until) VALUES (?, ?, ?) RETURNING id",
    head: head!(),
    lease: lease!(),
    begin_and_head: Some(concat!("BEGIN IMMEDIATE; ", head!())),
    lease_and_commit: Some(concat!(lease!(), "; COMMIT")),
    ack: "DELETE FROM seedwork_subscription_messages \
        WHERE subscription_id = ? AND sequence = ? AND lease_owner = ? AND deliveries = ?",
    // The two lists are paired by position (`json_each`'s `key`).
    ack_many: "DELETE FROM seedwork_subscription_messages \
        WHERE subscription_id = ? AND lease_owner = ? AND (sequence, deliveries) IN \
        (SELECT s.value, a.value FROM json_each(?) s JOIN json_each(?) a ON a.key = s.key)",
    retry_later: "UPDATE seedwork_subscription_messages \
        SET lease_owner = NULL, visible_after = ? \
        WHERE subscription_id = ? AND sequence = ? AND lease_owner = ? AND deliveries = ?",
    heartbeat: "UPDATE seedwork_consumers SET lease_until = ? \
        WHERE id = ? AND lease_until > ?",
    unregister: "DELETE FROM seedwork_consumers WHERE id = ?",
    drop_if_unattached: "DELETE FROM seedwork_subscriptions \
        WHERE id = ?1 AND durable = 0 AND NOT EXISTS (SELECT 1 FROM seedwork_consumers \
        WHERE subscription_id = ?1 AND lease_until > ?2)",
    delete_subscription: "DELETE FROM seedwork_subscriptions WHERE id = ?",
    // One writer at a time: nothing to pass over.
    drop_abandoned: "DELETE FROM seedwork_subscriptions \
        WHERE durable = 0 AND NOT EXISTS (SELECT 1 FROM seedwork_consumers c \
        WHERE c.subscription_id = seedwork_subscriptions.id AND c.lease_until > ?)",
    release: "UPDATE seedwork_subscription_messages SET lease_owner = NULL WHERE lease_owner = ?",
    purge: "DELETE FROM seedwork_topic_log WHERE published_at < ? \
        AND NOT EXISTS (SELECT 1 FROM seedwork_subscription_messages m \
        WHERE m.sequence = seedwork_topic_log.sequence)",
};

const SAGA_GET: &str =
    "SELECT version, data FROM seedwork_sagas WHERE saga = ? AND correlation_id = ?";
