//! The statements in SQLite's SQL. Lists are bound as one JSON array text and read back with
//! `json_each`.

use crate::dialect::Statements;

pub(super) const STATEMENTS: Statements = Statements {
    scan_outbox: "SELECT sequence, message_key, lease_owner, lease_until \
        FROM seedwork_outbox WHERE published_at IS NULL ORDER BY sequence LIMIT ?",
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
    purge: "DELETE FROM seedwork_outbox WHERE published_at IS NOT NULL AND published_at <= ?",
    pending: "SELECT COUNT(*) AS pending FROM seedwork_outbox WHERE published_at IS NULL",
    insert_outbox: "INSERT INTO seedwork_outbox \
        (message_id, topic, message_key, envelope, properties, created_at) \
        VALUES (?, ?, ?, ?, ?, ?)",
    insert_inbox: "INSERT INTO seedwork_inbox \
        (consumer, message_id, processed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
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
};

const AGGREGATE_GET: &str =
    "SELECT version, data FROM seedwork_aggregates WHERE aggregate_type = ? AND id = ?";
