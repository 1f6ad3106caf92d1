-- seedwork: outbox, inbox and the document table of JsonRepository.

CREATE TABLE IF NOT EXISTS seedwork_outbox (
    sequence     INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   TEXT    NOT NULL,
    topic        TEXT    NOT NULL,
    message_key  TEXT,
    envelope     TEXT    NOT NULL,
    properties   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    lease_owner  TEXT,
    lease_until  INTEGER,
    published_at INTEGER
);
CREATE INDEX IF NOT EXISTS seedwork_outbox_unpublished
    ON seedwork_outbox (published_at, sequence);
CREATE INDEX IF NOT EXISTS seedwork_outbox_key
    ON seedwork_outbox (message_key, sequence);

CREATE TABLE IF NOT EXISTS seedwork_inbox (
    consumer     TEXT    NOT NULL,
    message_id   TEXT    NOT NULL,
    processed_at INTEGER NOT NULL,
    PRIMARY KEY (consumer, message_id)
);

CREATE TABLE IF NOT EXISTS seedwork_aggregates (
    aggregate_type TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    data           TEXT    NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (aggregate_type, id)
);
