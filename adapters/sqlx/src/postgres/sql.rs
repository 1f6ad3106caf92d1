//! The statements in PostgreSQL's SQL. Lists are bound as native arrays (`= ANY($n)`); JSON
//! documents are `jsonb`, written from text and read back as text.

use crate::dialect::Statements;

pub(super) const STATEMENTS: Statements = Statements {
    // Candidate rows locked by another relay's claim are skipped, not waited for.
    scan_outbox: "SELECT sequence, message_key, lease_owner, lease_until \
        FROM seedwork_outbox WHERE published_at IS NULL ORDER BY sequence LIMIT $1 \
        FOR UPDATE SKIP LOCKED",
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
    purge: "DELETE FROM seedwork_outbox WHERE published_at IS NOT NULL AND published_at <= $1",
    pending: "SELECT COUNT(*) AS pending FROM seedwork_outbox WHERE published_at IS NULL",
    insert_outbox: "INSERT INTO seedwork_outbox \
        (message_id, topic, message_key, envelope, properties, created_at) \
        VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6)",
    insert_inbox: "INSERT INTO seedwork_inbox \
        (consumer, message_id, processed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
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
};
