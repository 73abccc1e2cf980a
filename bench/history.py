"""Dashboard queries on a city-sized history: 10 million detections and 1 million readings.

Starts a local TimescaleDB, generates the history inside the server (generate_series:
200 cameras over 30 days, 100 sensors), then times each dashboard query (best of 3) and
prints one JSON object. The baseline in the same run is a plain `count(*)` over the same
day of detections, the least any detection query must do. Goal: every query under 1 s.

    .venv/bin/python -m bench.history [--detections 10000000] [--readings 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.scratch import scratch_database
from storage.aggregates import AggregateQuery, aggregate
from storage.export import export
from storage.search import COLUMNS, EventQuery, search

END = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 30
CAMERAS, SENSORS = 200, 100
LABELS = "ARRAY['person','car','bus','bicycle','dog','truck']"

GENERATE_DETECTIONS = f"""
INSERT INTO detections (time, event_id, source_id, frame_event_id, model, model_version, box_count, labels,
                        boxes, inference_ms, kind)
SELECT $1::timestamptz - (i * $2::double precision) * interval '1 second', gen_random_uuid(),
       'cam-' || (i % {CAMERAS}), gen_random_uuid(), 'yolov8n', '8', 1 + (i % 5),
       ARRAY[({LABELS})[1 + (i % 6)], ({LABELS})[1 + ((i / 7) % 6)]], '[]'::jsonb, 40, 'camera'
  FROM generate_series(1, $3::bigint) AS i
"""
GENERATE_READINGS = f"""
INSERT INTO readings (time, event_id, source_id, values, units, aqi, lat, lon)
SELECT $1::timestamptz - (i * $2::double precision) * interval '1 second', gen_random_uuid(),
       'aq-' || (i % {SENSORS}), jsonb_build_object('pm25', (i % 80)::float, 'no2', (i % 60)::float),
       '{{"pm25": "ug/m3", "no2": "ug/m3"}}'::jsonb, (i % 200), 51.4 + (i % {SENSORS}) * 0.002,
       -0.2 + (i % {SENSORS}) * 0.002
  FROM generate_series(1, $3::bigint) AS i
"""
GENERATE_ALERTS = f"""
INSERT INTO alerts (time, event_id, alert_id, rule_id, state, severity, source_id, title, started_at, labels,
                    evidence, group_key)
SELECT $1::timestamptz - (i * 60) * interval '1 second', gen_random_uuid(), gen_random_uuid(),
       'rule-' || (i % 20), 'fired', (ARRAY['info','warning','critical'])[1 + i % 3],
       'cam-' || (i % {CAMERAS}),
       'Alert ' || i, $1::timestamptz - (i * 60) * interval '1 second', '{{}}'::jsonb, '{{}}'::jsonb,
       'cam-' || (i % {CAMERAS})
  FROM generate_series(1, {DAYS} * 24 * 60) AS i
"""


async def best_of(run: Callable[[], Awaitable[Any]], times: int = 3) -> tuple[float, Any]:
    results = []
    result = None
    for _ in range(times):
        started = time.perf_counter()
        result = await run()
        results.append(time.perf_counter() - started)
    return round(min(results) * 1000, 1), result


async def main(detections: int, readings: int) -> dict[str, object]:
    async with scratch_database("cw-bench-history-") as pool:
        async with pool.acquire() as connection:
            started = time.perf_counter()
            span_s = DAYS * 86400
            await connection.execute(GENERATE_DETECTIONS, END, span_s / detections, detections)
            await connection.execute(GENERATE_READINGS, END, span_s / readings, readings)
            await connection.execute(GENERATE_ALERTS, END)
            await connection.execute("ANALYZE")
            load_s = time.perf_counter() - started
        day = (END - timedelta(days=1), END)
        month = (END - timedelta(days=DAYS), END)
        queries: dict[str, Callable[[], Awaitable[Any]]] = {
            "baseline_count_one_day_of_detections": lambda: pool.fetchval(
                "SELECT count(*) FROM detections WHERE time >= $1 AND time < $2", *day),
            "detections_per_class_per_hour_one_camera_one_day": lambda: aggregate(pool, AggregateQuery(
                name="detections_per_class", start=day[0], end=day[1], bucket="1h", sources=["cam-7"])),
            "detections_per_class_per_hour_all_cameras_one_day": lambda: aggregate(pool, AggregateQuery(
                name="detections_per_class", start=day[0], end=day[1], bucket="1h", classes=["person"])),
            "aqi_series_hourly_one_sensor_30_days": lambda: aggregate(pool, AggregateQuery(
                name="aqi_series", start=month[0], end=month[1], bucket="1h", sources=["aq-3"])),
            "pm25_daily_all_sensors_30_days": lambda: aggregate(pool, AggregateQuery(
                name="aqi_series", start=month[0], end=month[1], bucket="1d", field="pm25")),
            "alerts_per_rule_per_day_30_days": lambda: aggregate(pool, AggregateQuery(
                name="alerts_per_rule", start=month[0], end=month[1], bucket="1d")),
            "time_to_ack_per_rule_per_day_30_days": lambda: aggregate(pool, AggregateQuery(
                name="time_to_ack", start=month[0], end=month[1], bucket="1d")),
            "search_page_person_one_camera_30_days": lambda: search(pool, EventQuery(
                kind="detections", start=month[0], end=month[1], sources=["cam-42"], classes=["person"],
                limit=100)),
            "search_page_critical_alerts_30_days": lambda: search(pool, EventQuery(
                kind="alerts", start=month[0], end=month[1], severities=["critical"], limit=100)),
            "readings_within_500m_one_day": lambda: search(pool, EventQuery.model_validate({
                "kind": "readings", "start": day[0], "end": day[1], "limit": 1000,
                "near": {"lat": 51.45, "lon": -0.15, "radius_m": 500}})),
        }
        timings: dict[str, float] = {}
        for name, run in queries.items():
            timings[name], _ = await best_of(run)
        page_ms, page = await best_of(lambda: search(pool, EventQuery(
            kind="readings", start=day[0], end=day[1], limit=10_000)), 1)
        started = time.perf_counter()
        export(page.rows, COLUMNS["readings"], "parquet")
        timings["export_10k_readings_parquet_incl_query"] = round(
            page_ms + (time.perf_counter() - started) * 1000, 1)
        slowest = max(v for k, v in timings.items() if not k.startswith("baseline"))
        return {"benchmark": "history", "cpu_count": os.cpu_count(), "detections": detections,
                "readings": readings, "load_s": round(load_s, 1), "query_ms": timings,
                "slowest_ms": slowest, "goal_ms": 1000}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--detections", type=int, default=10_000_000)
    parser.add_argument("--readings", type=int, default=1_000_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.detections, args.readings))))
