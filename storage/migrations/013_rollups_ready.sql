-- Hourly rollups (continuous aggregates, community license only: storage/community.py) that
-- hold all history: a row is written once a rollup has been filled from every stored row and
-- its refresh policy added, and only then do the aggregate queries read it.
CREATE TABLE IF NOT EXISTS rollups_ready (
    name     text        PRIMARY KEY,
    ready_at timestamptz NOT NULL DEFAULT now()
);
