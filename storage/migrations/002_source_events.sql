-- Source health and data-quality events (telemetry topic): what a camera or sensor said
-- about itself. One narrow hypertable; the body keeps the full event.
CREATE TABLE IF NOT EXISTS source_events (
    time        timestamptz NOT NULL,
    event_id    uuid        NOT NULL,
    source_id   text        NOT NULL,
    kind        text        NOT NULL,
    issue       text,
    active      boolean,
    body        jsonb       NOT NULL,
    PRIMARY KEY (event_id, time)
);
SELECT create_hypertable('source_events', by_range('time', INTERVAL '7 days'), if_not_exists => TRUE);
CREATE INDEX IF NOT EXISTS source_events_source_time ON source_events (source_id, time DESC);
