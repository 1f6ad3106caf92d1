-- seedwork: event positions without a head row.
--
-- An append now takes the position one above the highest stored, in the statement that
-- inserts the event: SQLite's writers take turns, so that is the last position committed, and
-- the head row (one more statement per append) is no longer needed. Positions continue from
-- the highest existing one.
DROP TABLE IF EXISTS seedwork_event_head;
