-- The notification log doubles as a durable outbox: what to send (the alert and the
-- escalation step) is kept with each entry, so a delivery that failed for a while (a
-- provider outage) or was claimed by a worker that died is retried later.
ALTER TABLE notification_log ADD COLUMN IF NOT EXISTS alert jsonb;
ALTER TABLE notification_log ADD COLUMN IF NOT EXISTS step integer NOT NULL DEFAULT 0;
ALTER TABLE notification_log ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz;
CREATE INDEX IF NOT EXISTS notification_log_retry ON notification_log (next_attempt_at)
    WHERE status IN ('failed', 'pending');
