"""Rule evaluation throughput: events/s on one core with 1, 100 and 1,000 rules loaded.

Rules are spread over 100 cameras and 100 sensors (each rule watches one source, as a
city's rules do), so with 1,000 rules every event meets 5-10 of them; a second, sparse
layout spreads them over 1,000 sources (about one rule per event). Events cycle over all
sources, detections and readings alternating.
Baseline in the same run: the cost of only decoding the same events from JSON, which
every evaluation pays anyway. Prints one JSON object with events/s and p99 latency.

    .venv/bin/python -m bench.rules [--events 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import numpy as np

from detectors.events import Box, Detection
from ingest.events import Event, Reading
from rules.engine import RuleEngine
from rules.loader import parse_rules
from rules.model import Rule

DENSE, SPARSE = 100, 500  # cameras (and as many sensors)


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
    engine = RuleEngine(rules)
    latencies = np.empty(len(events))
    started = time.perf_counter()
    for index, event in enumerate(events):
        t0 = time.perf_counter()
        engine.evaluate(event)
        latencies[index] = time.perf_counter() - t0
    elapsed = time.perf_counter() - started
    p99_us = round(float(np.percentile(latencies, 99)) * 1e6, 1)
    return {"events_per_s": round(len(events) / elapsed), "p99_us": p99_us}


def main(count: int) -> dict[str, object]:
    events = make_events(count)
    raw = [(type(e), e.to_json()) for e in events]
    started = time.perf_counter()
    for kind, payload in raw:
        kind.from_json(payload)
    decode_rate = round(count / (time.perf_counter() - started))
    return {
        "benchmark": "rules",
        "cpu_count": os.cpu_count(),
        "events": count,
        "decode_only_events_per_s": decode_rate,
        "by_rule_count": {str(n): measure(make_rules(n), events) for n in (1, 100, 1000)},
        "sparse_1000_rules": measure(make_rules(1000, SPARSE), make_events(count, SPARSE)),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    print(json.dumps(main(args.events)))
