-- seedwork: the event store (seedwork::eventsourcing::EventStore): one stream per aggregate,
-- a global position across streams, and the latest snapshot of each stream.

CREATE TABLE IF NOT EXISTS seedwork_events (
    -- Taken from seedwork_event_head in the appending transaction, which holds that row until
    -- it commits: positions increase in commit order, so a reader never skips an event.
    position      INTEGER  PRIMARY KEY,
    stream_type   TEXT    NOT NULL,
    stream_id     TEXT    NOT NULL,
    version       INTEGER  NOT NULL,
    event_type    TEXT    NOT NULL,
    event_version TEXT    NOT NULL,
    data          TEXT   NOT NULL,
    occurred_at   INTEGER  NOT NULL,
    recorded_at   INTEGER  NOT NULL,
    UNIQUE (stream_type, stream_id, version)
);

-- The last position handed out (one row).
CREATE TABLE IF NOT EXISTS seedwork_event_head (
    id       INTEGER  PRIMARY KEY CHECK (id = 1),
    position INTEGER  NOT NULL
);
INSERT INTO seedwork_event_head (id, position) VALUES (1, 0) ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS seedwork_snapshots (
    stream_type TEXT    NOT NULL,
    stream_id   TEXT    NOT NULL,
    version     INTEGER  NOT NULL,
    state       TEXT   NOT NULL,
    updated_at  INTEGER  NOT NULL,
    PRIMARY KEY (stream_type, stream_id)
);
