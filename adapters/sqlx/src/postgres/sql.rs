//! The statements in PostgreSQL's SQL. Lists are bound as native arrays (`= ANY($n)`); JSON
//! documents are `jsonb` (event payloads `json`, kept verbatim), written from text and read
//! back as text.

use crate::dialect::{EventAppend, Statements, TransportStatements};

pub(super) const STATEMENTS: Statements = Statements {
    // Candidate rows locked by another relay's claim are skipped, not waited for. Parked rows,
    // and the rows behind a parked row of their key, are never candidates: however many they
    // are, they cannot fill the scan.
    scan_outbox: "SELECT o.sequence, o.message_key, o.lease_owner, o.lease_until \
        FROM seedwork_outbox o WHERE o.published_at IS NULL AND o.parked_at IS NULL \
        AND NOT EXISTS (SELECT 1 FROM seedwork_outbox p WHERE p.parked_at IS NOT NULL \
        AND p.published_at IS NULL AND p.message_key = o.message_key \
        AND p.sequence < o.sequence) \
        ORDER BY o.sequence LIMIT $1 FOR UPDATE OF o SKIP LOCKED",
    // Locked or not: a key's earlier row held elsewhere must block the key.
    key_history: "SELECT sequence, message_key FROM seedwork_outbox \
        WHERE published_at IS NULL AND sequence <= $1 AND message_key = ANY($2)",
    lease: "UPDATE seedwork_outbox SET lease_owner = $1, lease_until = $2 \
        WHERE sequence = ANY($3)",
    fetch_claimed: "SELECT sequence, topic, message_key, \
        envelope::text AS envelope, properties::text AS properties FROM seedwork_outbox \
        WHERE sequence = ANY($1) ORDER BY sequence",
    mark_published: "UPDATE seedwork_outbox SET published_at = $1, \
        lease_owner = NULL, lease_until = NULL WHERE lease_owner = $2 AND published_at IS NULL \
        AND sequence = ANY($3)",
    release: "UPDATE seedwork_outbox SET lease_owner = NULL, \
        lease_until = NULL WHERE lease_owner = $1 AND published_at IS NULL \
        AND sequence = ANY($2)",
    renew: "UPDATE seedwork_outbox SET lease_until = $1 \
        WHERE lease_owner = $2 AND published_at IS NULL AND sequence = ANY($3)",
    record_failure: "UPDATE seedwork_outbox SET attempts = attempts + 1, last_error = $1, \
        parked_at = CASE WHEN attempts + 1 >= $2 THEN $3::bigint ELSE NULL END, \
        lease_owner = NULL, lease_until = NULL \
        WHERE sequence = $4 AND lease_owner = $5 AND published_at IS NULL \
        AND parked_at IS NULL RETURNING parked_at",
    parked: "SELECT sequence, topic, message_key, envelope::text AS envelope, \
        properties::text AS properties, attempts, last_error, parked_at FROM seedwork_outbox \
        WHERE parked_at IS NOT NULL AND published_at IS NULL AND sequence > $1 \
        ORDER BY sequence LIMIT $2",
    redrive: "UPDATE seedwork_outbox SET parked_at = NULL, attempts = 0, last_error = NULL, \
        lease_owner = NULL, lease_until = NULL \
        WHERE sequence = $1 AND parked_at IS NOT NULL AND published_at IS NULL",
    discard: "DELETE FROM seedwork_outbox \
        WHERE sequence = $1 AND parked_at IS NOT NULL AND published_at IS NULL",
    lag: "SELECT MIN(created_at) FILTER (WHERE parked_at IS NULL) AS oldest, \
        COUNT(*) FILTER (WHERE parked_at IS NULL) AS pending, \
        COUNT(*) FILTER (WHERE parked_at IS NOT NULL) AS parked \
        FROM seedwork_outbox WHERE published_at IS NULL",
    purge: "DELETE FROM seedwork_outbox WHERE published_at IS NOT NULL AND published_at <= $1",
    pending: "SELECT COUNT(*) AS pending FROM seedwork_outbox WHERE published_at IS NULL",
    insert_outbox: "INSERT INTO seedwork_outbox \
        (message_id, topic, message_key, envelope, properties, created_at) \
        VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6)",
    insert_inbox: "INSERT INTO seedwork_inbox \
        (consumer, message_id, processed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    insert_inbox_many: "INSERT INTO seedwork_inbox (consumer, message_id, processed_at) \
        SELECT $1, m, $3 FROM unnest($2::text[]) AS m \
        ON CONFLICT DO NOTHING RETURNING message_id",
    purge_inbox: "DELETE FROM seedwork_inbox WHERE processed_at <= $1",
    aggregate_get: "SELECT version, data::text AS data FROM seedwork_aggregates \
        WHERE aggregate_type = $1 AND id = $2",
    aggregate_get_for_update: "SELECT version, data::text AS data \
        FROM seedwork_aggregates WHERE aggregate_type = $1 AND id = $2 FOR UPDATE",
    aggregate_list: "SELECT version, data::text AS data \
        FROM seedwork_aggregates WHERE aggregate_type = $1 AND ($2::text IS NULL OR id > $2) \
        ORDER BY id LIMIT $3",
    aggregate_insert: "INSERT INTO seedwork_aggregates \
        (aggregate_type, id, version, data, updated_at) VALUES ($1, $2, 1, $3::jsonb, $4) \
        ON CONFLICT DO NOTHING",
    aggregate_update: "UPDATE seedwork_aggregates \
        SET version = version + 1, data = $1::jsonb, updated_at = $2 \
        WHERE aggregate_type = $3 AND id = $4 AND version = $5",
    aggregate_delete: "DELETE FROM seedwork_aggregates WHERE aggregate_type = $1 AND id = $2",
    saga_get: "SELECT version, data::text AS data FROM seedwork_sagas \
        WHERE saga = $1 AND correlation_id = $2",
    saga_get_for_update: "SELECT version, data::text AS data FROM seedwork_sagas \
        WHERE saga = $1 AND correlation_id = $2 FOR UPDATE",
    saga_insert: "INSERT INTO seedwork_sagas \
        (saga, correlation_id, version, status, deadline_at, data, updated_at) \
        VALUES ($1, $2, 1, $3, $4, $5::jsonb, $6) ON CONFLICT DO NOTHING",
    saga_update: "UPDATE seedwork_sagas SET version = version + 1, status = $1, \
        deadline_at = $2, data = $3::jsonb, updated_at = $4 \
        WHERE saga = $5 AND correlation_id = $6 AND version = $7",
    saga_find: "SELECT version, data::text AS data FROM seedwork_sagas \
        WHERE correlation_id = $1 ORDER BY saga",
    saga_due: "SELECT saga, correlation_id FROM seedwork_sagas \
        WHERE deadline_at IS NOT NULL AND deadline_at <= $1 \
        ORDER BY deadline_at, saga, correlation_id LIMIT $2",
    // The position: the transaction's id times 2^20 (`dialect::EVENTS_PER_TRANSACTION`) plus
    // the event's rank in the transaction, which the transaction counts. No row is shared
    // between appenders; `event_read_all` stops below the oldest transaction in progress.
    event_append: EventAppend::PerTransaction(
        "INSERT INTO seedwork_events (position, stream_type, stream_id, version, event_type, \
         event_version, data, occurred_at, recorded_at) \
         SELECT pg_current_xact_id()::text::bigint * 1048576 + $9, \
                $1, $2, $3, $4, $5, $6::json, $7, $8 \
         WHERE (SELECT COALESCE(MAX(version), 0) FROM seedwork_events \
                WHERE stream_type = $1 AND stream_id = $2) = $3 - 1 \
         ON CONFLICT DO NOTHING",
    ),
    event_load: "SELECT position, version, event_type, event_version, data::text AS data, occurred_at \
        FROM seedwork_events \
        WHERE stream_type = $1 AND stream_id = $2 AND version > $3 ORDER BY version",
    event_read_all: "SELECT position, stream_type, stream_id, version, event_type, event_version, data::text AS data, occurred_at FROM seedwork_events \
        WHERE position > $1 \
          AND position < pg_snapshot_xmin(pg_current_snapshot())::text::bigint * 1048576 \
        ORDER BY position LIMIT $2",
    event_last_position: "SELECT COALESCE(MAX(position), 0) AS position FROM seedwork_events",
    snapshot_save: "INSERT INTO seedwork_snapshots (stream_type, stream_id, version, state, \
        updated_at) VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT (stream_type, stream_id) \
        DO UPDATE SET version = excluded.version, state = excluded.state, \
        updated_at = excluded.updated_at WHERE seedwork_snapshots.version < excluded.version",
    snapshot_load: "SELECT version, state::text AS state FROM seedwork_snapshots \
        WHERE stream_type = $1 AND stream_id = $2",
};

/// Claims (and attaches) of one subscription lock its row `FOR NO KEY UPDATE`, so they take
/// turns across processes while other subscriptions' claims run in parallel (and publishes,
/// whose foreign-key checks take only `KEY SHARE` locks, are not held up). Publishes and
/// detaches `NOTIFY` the channel every transport listens on
/// (`crate::transport::postgres::CHANNEL`).
pub(super) const TRANSPORT: TransportStatements = TransportStatements {
    // The identity is drawn row by row as the sorted rows are inserted, so sequences follow
    // the list's order.
    // Both inserts and the wake-up of each topic in one statement (data-modifying CTEs are
    // always run; `woken` is counted so that it runs too): one round trip instead of three
    // or more. NOTIFY is delivered when (and only if) the transaction commits.
    // The subscriptions are read `FOR KEY SHARE`: a non-durable subscription's last detach
    // may be deleting one, and the read then waits for it and, once the delete commits,
    // leaves it out, where a plain read would fan out to it and fail the foreign key.
    // Claims lock subscriptions `FOR NO KEY UPDATE`, which does not conflict.
    append_many: "WITH appended AS (INSERT INTO seedwork_topic_log \
        (topic, message_key, envelope, properties, published_at) \
        SELECT m ->> 0, m ->> 1, (m ->> 2)::jsonb, (m ->> 3)::jsonb, $2 \
        FROM json_array_elements($1::json) WITH ORDINALITY AS e(m, n) ORDER BY n \
        RETURNING sequence, topic, message_key), \
        fanned_out AS (INSERT INTO seedwork_subscription_messages \
        (subscription_id, sequence, message_key) \
        SELECT s.id, a.sequence, a.message_key \
        FROM appended a JOIN seedwork_subscriptions s ON s.topic = a.topic \
        FOR KEY SHARE OF s), \
        woken AS (SELECT pg_notify('seedwork_transport', t.topic) \
        FROM (SELECT DISTINCT topic FROM appended) t) \
        SELECT a.sequence FROM appended a CROSS JOIN (SELECT COUNT(*) FROM woken) w",
    // Delivered to the listeners when (and only if) the transaction commits.
    notify: Some("SELECT pg_notify('seedwork_transport', $1)"),
    create_subscription: "INSERT INTO seedwork_subscriptions \
        (topic, name, kind, durable, created_sequence, created_at) \
        VALUES ($1, $2, $3, $4, \
        (SELECT COALESCE(MAX(sequence), 0) FROM seedwork_topic_log), $5) \
        ON CONFLICT (topic, name) DO NOTHING",
    subscription: "SELECT id, kind, durable FROM seedwork_subscriptions \
        WHERE topic = $1 AND name = $2 FOR NO KEY UPDATE",
    lock_subscription: Some(
        "SELECT id FROM seedwork_subscriptions WHERE id = $1 FOR NO KEY UPDATE",
    ),
    forget_expired: "DELETE FROM seedwork_consumers \
        WHERE subscription_id = $1 AND lease_until <= $2",
    count_consumers: "SELECT COUNT(*) AS consumers FROM seedwork_consumers \
        WHERE subscription_id = $1",
    set_kind: "UPDATE seedwork_subscriptions SET kind = $1 WHERE id = $2",
    register: "INSERT INTO seedwork_consumers \
        (subscription_id, attached_at, lease_until) VALUES ($1, $2, $3) RETURNING id",
    // `live` is an uncorrelated subquery: PostgreSQL runs it once per statement.
    head: "SELECT sequence, message_key, visible_after, lease_owner, \
        (SELECT string_agg(id::text, ',') FROM seedwork_consumers \
        WHERE subscription_id = $1 AND lease_until > $3) AS live \
        FROM seedwork_subscription_messages WHERE subscription_id = $1 \
        ORDER BY sequence LIMIT $2",
    lease: "UPDATE seedwork_subscription_messages m \
        SET lease_owner = $1, deliveries = m.deliveries + 1 \
        FROM seedwork_topic_log l \
        WHERE m.subscription_id = $2 AND m.sequence = ANY($3) AND l.sequence = m.sequence \
        RETURNING m.sequence, m.deliveries, m.message_key, l.topic, \
        l.envelope::text AS envelope, l.properties::text AS properties",
    // The extended protocol runs one statement per call: the claim opens and commits apart.
    begin_and_head: None,
    lease_and_commit: None,
    ack: "DELETE FROM seedwork_subscription_messages \
        WHERE subscription_id = $1 AND sequence = $2 AND lease_owner = $3 AND deliveries = $4",
    // The two arrays are paired by position.
    ack_many: "DELETE FROM seedwork_subscription_messages \
        WHERE subscription_id = $1 AND lease_owner = $2 AND (sequence, deliveries) IN \
        (SELECT * FROM unnest($3::bigint[], $4::bigint[]))",
    retry_later: "UPDATE seedwork_subscription_messages \
        SET lease_owner = NULL, visible_after = $1 \
        WHERE subscription_id = $2 AND sequence = $3 AND lease_owner = $4 AND deliveries = $5",
    heartbeat: "UPDATE seedwork_consumers SET lease_until = $1 \
        WHERE id = $2 AND lease_until > $3",
    unregister: "DELETE FROM seedwork_consumers WHERE id = $1",
    drop_if_unattached: "DELETE FROM seedwork_subscriptions \
        WHERE id = $1 AND durable = 0 AND NOT EXISTS (SELECT 1 FROM seedwork_consumers \
        WHERE subscription_id = $1 AND lease_until > $2)",
    delete_subscription: "DELETE FROM seedwork_subscriptions WHERE id = $1",
    // A subscription another transaction holds (a claim's lock, an attach) is passed over:
    // no waiting, and no lock-order deadlock between two sweeps.
    drop_abandoned: "DELETE FROM seedwork_subscriptions WHERE id IN \
        (SELECT s.id FROM seedwork_subscriptions s WHERE s.durable = 0 AND NOT EXISTS \
        (SELECT 1 FROM seedwork_consumers c \
        WHERE c.subscription_id = s.id AND c.lease_until > $1) \
        FOR UPDATE SKIP LOCKED)",
    release: "UPDATE seedwork_subscription_messages \
        SET lease_owner = NULL WHERE lease_owner = $1",
    purge: "DELETE FROM seedwork_topic_log WHERE published_at < $1 \
        AND NOT EXISTS (SELECT 1 FROM seedwork_subscription_messages m \
        WHERE m.sequence = seedwork_topic_log.sequence)",
};
