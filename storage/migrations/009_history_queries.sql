-- Indexes for the history queries (docs/storage.md) and one view of every alert state change.
CREATE INDEX IF NOT EXISTS detections_labels ON detections USING gin (labels);
CREATE INDEX IF NOT EXISTS alerts_labels ON alerts USING gin (labels);
CREATE INDEX IF NOT EXISTS alerts_source_time ON alerts (source_id, time DESC);
CREATE INDEX IF NOT EXISTS notifications_rule_time ON notifications (rule_id, time DESC);
CREATE INDEX IF NOT EXISTS source_events_issue_time ON source_events (issue, time DESC) WHERE issue IS NOT NULL;

-- fired, reminded, resolved, silenced (muted) and acknowledged, in one time line per alert.
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
  LEFT JOIN LATERAL (SELECT source_id, severity FROM alerts WHERE alerts.alert_id = k.alert_id LIMIT 1) a ON TRUE;
