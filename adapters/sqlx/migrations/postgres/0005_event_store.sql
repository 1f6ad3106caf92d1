-- seedwork: the event store (seedwork::eventsourcing::EventStore): one stream per aggregate,
-- a global position across streams, and the latest snapshot of each stream.

CREATE TABLE IF NOT EXISTS seedwork_events (
    -- Taken from seedwork_event_head in the appending transaction, which holds that row until
    -- it commits: positions increase in commit order, so a reader never skips an event.
    position      BIGINT  PRIMARY KEY,
    stream_type   TEXT    NOT NULL,
    stream_id     TEXT    NOT NULL,
    version       BIGINT  NOT NULL,
    event_type    TEXT    NOT NULL,
    event_version TEXT    NOT NULL,
    data          JSONB   NOT NULL,
    occurred_at   BIGINT  NOT NULL,
    recorded_at   BIGINT  NOT NULL,
    UNIQUE (stream_type, stream_id, version)
);

-- The last position handed out (one row).
CREATE TABLE IF NOT EXISTS seedwork_event_head (
    id       BIGINT  PRIMARY KEY CHECK (id = 1),
    position BIGINT  NOT NULL
);
INSERT INTO seedwork_event_head (id, position) VALUES (1, 0) ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS seedwork_snapshots (
    stream_type TEXT    NOT NULL,
    stream_id   TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    state       JSONB   NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (stream_type, stream_id)
);
