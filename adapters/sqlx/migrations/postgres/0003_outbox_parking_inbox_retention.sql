-- seedwork: failed publishes counted per outbox row, rows parked after too many of them, and
-- the inbox purged by age.

-- Publishes that failed for a reason of the row's own (an outage is not counted), the last
-- error, and when the relay gave up on the row (NULL: it is still tried).
ALTER TABLE seedwork_outbox
    ADD COLUMN IF NOT EXISTS attempts   BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS last_error TEXT,
    ADD COLUMN IF NOT EXISTS parked_at  BIGINT;

-- A claim skips the rows behind a parked row of their key: look those up by key.
CREATE INDEX IF NOT EXISTS seedwork_outbox_parked
    ON seedwork_outbox (message_key, sequence) WHERE parked_at IS NOT NULL;

-- The retention task deletes inbox rows by age.
CREATE INDEX IF NOT EXISTS seedwork_inbox_processed ON seedwork_inbox (processed_at);
