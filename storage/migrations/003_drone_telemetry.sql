-- Where each drone was, when: typed columns for the map and for flight-path queries.
CREATE TABLE IF NOT EXISTS drone_telemetry (
    time                 timestamptz NOT NULL,
    event_id             uuid        NOT NULL,
    source_id            text        NOT NULL,
    lat                  double precision NOT NULL,
    lon                  double precision NOT NULL,
    altitude_m           double precision,
    relative_altitude_m  double precision,
    heading_deg          double precision,
    speed_m_s            double precision,
    battery_pct          double precision,
    PRIMARY KEY (event_id, time)
);
SELECT create_hypertable('drone_telemetry', by_range('time', INTERVAL '1 day'), if_not_exists => TRUE);
CREATE INDEX IF NOT EXISTS drone_telemetry_source_time ON drone_telemetry (source_id, time DESC);
