-- seedwork: the durable transport (topic log, subscriptions, per-subscription message state,
-- attached consumers). See docs/sqlx.md, "The durable transport".

-- Every message ever published, in one global sequence (append-only).
CREATE TABLE IF NOT EXISTS seedwork_topic_log (
    sequence     INTEGER PRIMARY KEY AUTOINCREMENT,
    topic        TEXT    NOT NULL,
    message_key  TEXT,
    envelope     TEXT    NOT NULL,
    properties   TEXT    NOT NULL,
    published_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS seedwork_topic_log_topic
    ON seedwork_topic_log (topic, sequence);

-- Durable subscriptions; created_sequence is the last log sequence when it was created.
CREATE TABLE IF NOT EXISTS seedwork_subscriptions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    topic            TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    created_sequence INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    UNIQUE (topic, name)
);

-- One row per message a subscription has not yet acknowledged.
CREATE TABLE IF NOT EXISTS seedwork_subscription_messages (
    subscription_id INTEGER NOT NULL REFERENCES seedwork_subscriptions (id) ON DELETE CASCADE,
    sequence        INTEGER NOT NULL,
    message_key     TEXT,
    deliveries      INTEGER NOT NULL DEFAULT 0,
    visible_after   INTEGER NOT NULL DEFAULT 0,
    lease_owner     INTEGER,
    PRIMARY KEY (subscription_id, sequence)
);
CREATE INDEX IF NOT EXISTS seedwork_subscription_messages_owner
    ON seedwork_subscription_messages (lease_owner);
CREATE INDEX IF NOT EXISTS seedwork_subscription_messages_sequence
    ON seedwork_subscription_messages (sequence);

-- Attached consumers and their heartbeat leases; id order is attach order.
CREATE TABLE IF NOT EXISTS seedwork_consumers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id INTEGER NOT NULL REFERENCES seedwork_subscriptions (id) ON DELETE CASCADE,
    attached_at     INTEGER NOT NULL,
    lease_until     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS seedwork_consumers_subscription
    ON seedwork_consumers (subscription_id, lease_until);
