"""Rule evaluation throughput: events/s on one core with 1, 100 and 1,000 rules loaded, with
the event-time model against the previous (wall-clock tick) model, and the replay rate of a
month of stored history.

Rules are spread over 100 cameras and 100 sensors (each rule watches one source, as a
city's rules do), so with 1,000 rules every event meets 5-10 of them; a second, sparse
layout spreads them over 1,000 sources (about one rule per event). Events cycle over all
sources, detections and readings alternating.

Baselines in the same run: the cost of only decoding the same events from JSON, which every
evaluation pays anyway, and the previous engine (rules/, ingest/, detectors/ as of
`--baseline-rev`, taken from git into a temporary folder and run in a subprocess on the
same events). `regression_pct` is how much slower the current model is (negative: faster).

The month replay starts a local TimescaleDB, stores 30 days of readings of 10 sensors (one
a minute: 432,000 rows) and replays them through three rules as `citywatch rules test`
does (storage.history + rules.replay), reporting stored events replayed per second.

    .venv/bin/python -m bench.rules [--events 20000] [--baseline-rev d1792e4] [--no-replay]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from uuid import uuid4

import numpy as np

from detectors.events import Box, Detection
from ingest.events import Event, Reading
from rules.engine import RuleEngine
from rules.loader import parse_rules
from rules.model import Rule

DENSE, SPARSE = 100, 500  # cameras (and as many sensors)
ROOT = Path(__file__).resolve().parent.parent
BASELINE_REV = "d1792e4"  # the last commit before the event-time model (issue 14)


def make_rules(count: int, sources: int = DENSE) -> list[Rule]:
    documents = []
    for i in range(count):
        if i % 2:
            documents.append(
                f"- id: crowd-{i}\n  title: Crowd {i}\n  sources: {{ids: [cam-{i % sources}]}}\n"
                f"  condition: {{type: detection, classes: [person], min_count: {3 + i % 5}, for: 5s}}\n")
        else:
            documents.append(
                f"- id: no2-{i}\n  title: NO2 {i}\n  sources: {{ids: [aq-{i % sources}]}}\n"
                f"  condition: {{type: threshold, field: no2, above: {80 + i % 40}, for: 1h}}\n")
    return parse_rules("".join(documents), "bench.yaml")


def make_events(count: int, sources: int = DENSE) -> list[Event]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    person = Box(label="person", class_id=0, score=0.9, x1=0, y1=0, x2=10, y2=20)
    events: list[Event] = []
    for i in range(count):
        when = start + timedelta(seconds=i * 0.1)
        if i % 2:
            events.append(Detection(source_id=f"cam-{i % sources}", time=when, frame_event_id=uuid4(),
                                    model="m", model_version="1", frame_width=640, frame_height=480,
                                    boxes=(person,) * (i % 8), inference_ms=1.0))
        else:
            events.append(Reading(source_id=f"aq-{i % sources}", time=when,
                                  values={"no2": float(50 + i % 100)}, units={"no2": "ug/m3"}))
    return events


def measure(rules: list[Rule], events: list[Event]) -> dict[str, float]:
    """As a worker runs the engine: every event, and a clock tick every second of event time
    (the previous model needed them for `for` to fire; the event-time one visits only absence
    keys). Ticks count in the elapsed time; the latency percentile is per event."""
    engine = RuleEngine(rules)
    latencies = np.empty(len(events))
    alerts = 0
    next_tick = events[0].time + timedelta(seconds=1)
    started = time.perf_counter()
    for index, event in enumerate(events):
        if event.time >= next_tick:
            alerts += len(engine.tick(next_tick))
            next_tick += timedelta(seconds=1)
        t0 = time.perf_counter()
        alerts += len(engine.evaluate(event))
        latencies[index] = time.perf_counter() - t0
    elapsed = time.perf_counter() - started
    p99_us = round(float(np.percentile(latencies, 99)) * 1e6, 1)
    return {"events_per_s": round(len(events) / elapsed), "p99_us": p99_us, "alerts": alerts}


def layouts(count: int) -> dict[str, dict[str, float]]:
    """Every layout, measured with whichever `rules` package this interpreter imports."""
    events = make_events(count)
    measured = {str(n): measure(make_rules(n), events) for n in (1, 100, 1000)}
    measured["sparse_1000"] = measure(make_rules(1000, SPARSE), make_events(count, SPARSE))
    return measured


def previous_model(count: int, revision: str) -> dict[str, dict[str, float]]:
    """The same layouts on the engine as of `revision`: its domain packages from git, first on
    the path of a subprocess that runs this very benchmark module."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "rules", "ingest", "detectors"],
                             check=True, capture_output=True).stdout
    with tempfile.TemporaryDirectory(prefix="cw-bench-rules-") as folder:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join([folder, str(ROOT)])}
        command = [sys.executable, "-m", "bench.rules", "--events", str(count), "--layouts-only"]
        result = subprocess.run(command, check=True, capture_output=True, text=True, env=environment,
                                cwd=folder)
    measured: dict[str, dict[str, float]] = json.loads(result.stdout)
    return measured


MONTH_SENSORS, MONTH_DAYS = 10, 30
MONTH_RULES = """
- id: pm-high
  title: PM2.5 high
  sources: {kinds: [sensor]}
  condition: {type: threshold, field: pm25, above: 60, for: 15m}
  resolve_after: 10m
- id: pm-peaks
  title: PM2.5 peaks
  sources: {kinds: [sensor]}
  condition: {type: frequency, of: {type: threshold, field: pm25, above: 75}, count: 3, within: 1h}
- id: silent
  title: Sensor silent
  sources: {kinds: [sensor]}
  condition: {type: absence, within: 10m}
"""
GENERATE_MONTH = f"""
INSERT INTO readings (time, event_id, source_id, values, units)
SELECT $1::timestamptz + (i / {MONTH_SENSORS}) * interval '1 minute', gen_random_uuid(),
       'aq-' || (i % {MONTH_SENSORS}),
       jsonb_build_object('pm25', 40 + 40 * sin((i / {MONTH_SENSORS}) / 90.0 + (i % {MONTH_SENSORS}))),
       '{{"pm25": "ug/m3"}}'::jsonb
  FROM generate_series(0, $2::bigint - 1) AS i
"""


async def month_replay() -> dict[str, object]:
    from bench.scratch import scratch_database
    from rules.replay import replay
    from storage.history import history

    rows = MONTH_SENSORS * MONTH_DAYS * 24 * 60
    start = datetime(2026, 5, 1, tzinfo=UTC)
    end = start + timedelta(days=MONTH_DAYS)
    async with scratch_database("cw-bench-replay-") as pool:
        await pool.execute(GENERATE_MONTH, start, rows)
        rules = parse_rules(MONTH_RULES, "month.yaml")
        started = time.perf_counter()
        alerts = await replay(rules, history(pool, [Reading], start, end), end)
        elapsed = time.perf_counter() - started
    return {"stored_events": rows, "days": MONTH_DAYS, "sensors": MONTH_SENSORS, "rules": len(rules),
            "seconds": round(elapsed, 2), "events_per_s": round(rows / elapsed), "alerts": len(alerts)}


def main(count: int, revision: str, with_replay: bool) -> dict[str, object]:
    events = make_events(count)
    raw = [(type(e), e.to_json()) for e in events]
    started = time.perf_counter()
    for kind, payload in raw:
        kind.from_json(payload)
    decode_rate = round(count / (time.perf_counter() - started))
    current = layouts(count)
    previous = previous_model(count, revision)
    regression = {name: round(100 * (1 - current[name]["events_per_s"] / previous[name]["events_per_s"]), 1)
                  for name in current}
    return {
        "benchmark": "rules",
        "cpu_count": os.cpu_count(),
        "events": count,
        "decode_only_events_per_s": decode_rate,
        "event_time_model": current,
        "previous_model": {"revision": revision, **previous},
        "regression_pct": regression,
        "worst_regression_pct": max(regression.values()),
        "month_replay": asyncio.run(month_replay()) if with_replay else None,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--baseline-rev", default=BASELINE_REV, help="the git revision of the previous model")
    parser.add_argument("--no-replay", action="store_true", help="skip the month replay (no database)")
    parser.add_argument("--layouts-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.layouts_only:  # the subprocess measuring another revision's engine
        print(json.dumps(layouts(args.events)))
    else:
        print(json.dumps(main(args.events, args.baseline_rev, not args.no_replay)))
