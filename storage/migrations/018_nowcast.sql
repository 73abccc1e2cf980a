-- The EPA NowCast beside the averaged AQI: the index AirNow reports each hour from the
-- last 12 (PM) or 8 (ozone) hourly averages (ingest/nowcast.py). Nullable, no default: a
-- compressed hypertable takes the column as metadata, rewriting nothing.
ALTER TABLE readings ADD COLUMN IF NOT EXISTS nowcast_aqi smallint;
ALTER TABLE readings ADD COLUMN IF NOT EXISTS nowcast_pollutant text;
