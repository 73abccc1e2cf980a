-- Acknowledgements (console, API, SMS reply, email link) and escalation steps of notifications.
CREATE TABLE IF NOT EXISTS alert_acks (
    time      timestamptz NOT NULL,
    event_id  uuid        NOT NULL,
    alert_id  uuid        NOT NULL,
    rule_id   text        NOT NULL,
    group_key text        NOT NULL,
    by_whom   text        NOT NULL,
    via       text        NOT NULL,
    note      text        NOT NULL DEFAULT '',
    PRIMARY KEY (event_id, time)
);
SELECT create_hypertable('alert_acks', by_range('time', INTERVAL '30 days'), if_not_exists => TRUE);
CREATE INDEX IF NOT EXISTS alert_acks_alert ON alert_acks (alert_id);

ALTER TABLE notifications ADD COLUMN IF NOT EXISTS step integer NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS reminder integer NOT NULL DEFAULT 0;

-- What the SMS provider reported later about each message (signed status callbacks).
CREATE TABLE IF NOT EXISTS delivery_receipts (
    time              timestamptz NOT NULL,
    event_id          uuid        NOT NULL,
    provider_id       text        NOT NULL,
    status            text        NOT NULL,
    error_code        text,
    recipient_address text        NOT NULL DEFAULT '',
    PRIMARY KEY (event_id, time)
);
SELECT create_hypertable('delivery_receipts', by_range('time', INTERVAL '30 days'), if_not_exists => TRUE);
CREATE INDEX IF NOT EXISTS delivery_receipts_provider ON delivery_receipts (provider_id);
