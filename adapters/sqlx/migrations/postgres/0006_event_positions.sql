-- seedwork: event positions without a shared head.
--
-- From here on an appended event's position is the appending transaction's id times 2^20 plus
-- the event's rank in that transaction, so appenders no longer take turns on one row. Readers
-- of every stream stop below the oldest transaction still in progress, so an event that
-- commits late is never passed over. Transaction ids only grow, so the new positions start at
-- 2^20 times an id at least the number of transactions that ever appended: above every
-- position the head handed out (unless some transaction appended more than 2^20 events), and
-- the checkpoints of projections stay valid.
DROP TABLE IF EXISTS seedwork_event_head;

-- Event payloads as `json`: kept verbatim, never queried inside, so neither an append nor a
-- read converts them (`jsonb` parses on the way in and prints on the way out).
ALTER TABLE seedwork_events ALTER COLUMN data TYPE json USING data::json;
