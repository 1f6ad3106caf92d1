-- seedwork: outbox, inbox and the document table of JsonRepository.

CREATE TABLE IF NOT EXISTS seedwork_outbox (
    sequence     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id   TEXT   NOT NULL,
    topic        TEXT   NOT NULL,
    message_key  TEXT,
    envelope     JSONB  NOT NULL,
    properties   JSONB  NOT NULL,
    created_at   BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT,
    published_at BIGINT
);
CREATE INDEX IF NOT EXISTS seedwork_outbox_unpublished
    ON seedwork_outbox (sequence) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS seedwork_outbox_key
    ON seedwork_outbox (message_key, sequence) WHERE published_at IS NULL;

CREATE TABLE IF NOT EXISTS seedwork_inbox (
    consumer     TEXT   NOT NULL,
    message_id   TEXT   NOT NULL,
    processed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, message_id)
);

CREATE TABLE IF NOT EXISTS seedwork_aggregates (
    aggregate_type TEXT   NOT NULL,
    id             TEXT   NOT NULL,
    version        BIGINT NOT NULL,
    data           JSONB  NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (aggregate_type, id)
);
