-- Evidence snapshots: the JPEG of a detection's frame with its boxes drawn, in the database
-- so that every worker and the console can read it whichever host took it. Keyed by the
-- detection's event id (deterministic: a frame detected twice is kept once); a hypertable
-- so that it goes with the detections' retention, chunk by chunk.
CREATE TABLE IF NOT EXISTS snapshots (
    time      timestamptz NOT NULL,
    event_id  uuid        NOT NULL,
    source_id text        NOT NULL,
    jpeg      bytea       NOT NULL,
    PRIMARY KEY (event_id, time)
);
SELECT create_hypertable('snapshots', by_range('time', INTERVAL '1 day'), if_not_exists => TRUE);
CREATE INDEX IF NOT EXISTS snapshots_event ON snapshots (event_id);
