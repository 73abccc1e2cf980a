-- Events are stored idempotently: the primary key (event_id, time) lets a replayed
-- event be inserted again without creating a second row. TimescaleDB requires the
-- partitioning column (time) in every unique index, hence the pair.
-- Chunk interval: 1 day. At a few hundred cameras at 2-5 detections/s a day of
-- detections is tens of millions of rows, about the size that fits memory per chunk.

CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE IF NOT EXISTS readings (
    time          timestamptz NOT NULL,
    event_id      uuid        NOT NULL,
    source_id     text        NOT NULL,
    values        jsonb       NOT NULL,
    units         jsonb       NOT NULL,
    period_s      integer,
    aqi           smallint,
    aqi_pollutant text,
    lat           double precision,
    lon           double precision,
    PRIMARY KEY (event_id, time)
);
SELECT create_hypertable('readings', by_range('time', INTERVAL '1 day'), if_not_exists => TRUE);
CREATE INDEX IF NOT EXISTS readings_source_time ON readings (source_id, time DESC);

CREATE TABLE IF NOT EXISTS detections (
    time           timestamptz NOT NULL,
    event_id       uuid        NOT NULL,
    source_id      text        NOT NULL,
    frame_event_id uuid        NOT NULL,
    model          text        NOT NULL,
    model_version  text        NOT NULL,
    box_count      integer     NOT NULL,
    labels         text[]      NOT NULL,
    boxes          jsonb       NOT NULL,
    inference_ms   real        NOT NULL,
    PRIMARY KEY (event_id, time)
);
SELECT create_hypertable('detections', by_range('time', INTERVAL '1 day'), if_not_exists => TRUE);
CREATE INDEX IF NOT EXISTS detections_source_time ON detections (source_id, time DESC);

CREATE TABLE IF NOT EXISTS alerts (
    time        timestamptz NOT NULL,
    event_id    uuid        NOT NULL,
    alert_id    uuid        NOT NULL,
    rule_id     text        NOT NULL,
    state       text        NOT NULL,
    severity    text        NOT NULL,
    source_id   text        NOT NULL,
    title       text        NOT NULL,
    started_at  timestamptz NOT NULL,
    resolved_at timestamptz,
    labels      jsonb       NOT NULL,
    evidence    jsonb       NOT NULL,
    PRIMARY KEY (event_id, time)
);
SELECT create_hypertable('alerts', by_range('time', INTERVAL '7 days'), if_not_exists => TRUE);
CREATE INDEX IF NOT EXISTS alerts_alert_id ON alerts (alert_id, time DESC);
CREATE INDEX IF NOT EXISTS alerts_rule_time ON alerts (rule_id, time DESC);

CREATE TABLE IF NOT EXISTS notifications (
    time        timestamptz NOT NULL,
    event_id    uuid        NOT NULL,
    alert_id    uuid        NOT NULL,
    alert_state text        NOT NULL,
    rule_id     text        NOT NULL,
    recipient   text        NOT NULL,
    channel     text        NOT NULL,
    address     text        NOT NULL,
    status      text        NOT NULL,
    attempts    integer     NOT NULL,
    provider_id text,
    error       text,
    PRIMARY KEY (event_id, time)
);
SELECT create_hypertable('notifications', by_range('time', INTERVAL '7 days'), if_not_exists => TRUE);
CREATE INDEX IF NOT EXISTS notifications_alert ON notifications (alert_id, time DESC);

-- The outbox / notification log: one row per (alert, state, recipient, channel),
-- written before a send and updated after, so a crash never causes a second send.
CREATE TABLE IF NOT EXISTS notification_log (
    alert_id    uuid        NOT NULL,
    alert_state text        NOT NULL,
    recipient   text        NOT NULL,
    channel     text        NOT NULL,
    status      text        NOT NULL,
    attempts    integer     NOT NULL DEFAULT 0,
    provider_id text,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (alert_id, alert_state, recipient, channel)
);
