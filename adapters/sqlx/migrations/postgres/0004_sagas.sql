-- seedwork: saga instances (seedwork::saga::SagaStore), one row per saga and conversation.

CREATE TABLE IF NOT EXISTS seedwork_sagas (
    saga           TEXT    NOT NULL,
    correlation_id TEXT    NOT NULL,
    version        BIGINT  NOT NULL,
    status         TEXT    NOT NULL,
    -- When the awaited step times out (epoch milliseconds); NULL when nothing is awaited
    -- against a clock.
    deadline_at    BIGINT,
    -- The whole instance (position, state, log) as JSON; status and deadline are copied out
    -- to be queried.
    data           JSONB   NOT NULL,
    updated_at     BIGINT  NOT NULL,
    PRIMARY KEY (saga, correlation_id)
);

-- The deadline task asks for the passed deadlines, earliest first.
CREATE INDEX IF NOT EXISTS seedwork_sagas_deadline
    ON seedwork_sagas (deadline_at) WHERE deadline_at IS NOT NULL;

-- The saga log is looked up by conversation.
CREATE INDEX IF NOT EXISTS seedwork_sagas_correlation ON seedwork_sagas (correlation_id);
