-- Operators' comments on alerts, and the timeline view with them.
CREATE TABLE IF NOT EXISTS alert_comments (
    time      timestamptz NOT NULL,
    event_id  uuid        NOT NULL,
    alert_id  uuid        NOT NULL,
    rule_id   text        NOT NULL,
    group_key text        NOT NULL,
    by_whom   text        NOT NULL,
    text      text        NOT NULL,
    PRIMARY KEY (event_id, time)
);
SELECT create_hypertable('alert_comments', by_range('time', INTERVAL '30 days'), if_not_exists => TRUE);
CREATE INDEX IF NOT EXISTS alert_comments_alert ON alert_comments (alert_id);

CREATE OR REPLACE VIEW alert_history AS
SELECT time, alert_id, rule_id, group_key, source_id, severity,
       CASE WHEN muted IS NOT NULL THEN state || ' (muted)'
            WHEN reminder > 0 THEN 'reminded'
            ELSE state END AS change,
       COALESCE(muted, '') AS detail
  FROM alerts
UNION ALL
SELECT k.time, k.alert_id, k.rule_id, k.group_key, a.source_id, a.severity, 'acknowledged',
       k.by_whom || ' via ' || k.via
  FROM alert_acks k
  LEFT JOIN LATERAL (SELECT source_id, severity FROM alerts WHERE alerts.alert_id = k.alert_id LIMIT 1) a ON TRUE
UNION ALL
SELECT c.time, c.alert_id, c.rule_id, c.group_key, a.source_id, a.severity, 'comment', c.by_whom || ': ' || c.text
  FROM alert_comments c
  LEFT JOIN LATERAL (SELECT source_id, severity FROM alerts WHERE alerts.alert_id = c.alert_id LIMIT 1) a ON TRUE;
