"""The rule table's size and the engine's speed, typed state against the untyped dicts before.

The same events as bench.rules (100 cameras and 100 sensors, 100 or 1,000 rules) run
through the engine; then every value of its table is encoded as a Faust table writes it
to its changelog (Faust's JSON codec), and the bytes per key and the time to encode one
(each state write pays it) are reported. The baseline
is the engine as of `--baseline-rev` (the last commit with dict state), taken from git
into a temporary folder and run in a subprocess on the same events; events/s is the
median of `--rounds` runs of each, alternating, because this machine's speed drifts.

    .venv/bin/python -m bench.rule_state [--events 20000] [--baseline-rev 884f44d] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASELINE_REV = "884f44d"  # the last commit whose rule state was a dict of short keys
RULE_COUNTS = (100, 1000)


def one_round(count: int) -> dict[str, dict[str, float]]:
    """With whichever `rules` package this interpreter imports."""
    import faust.utils.json as faust_json

    from bench.rules import make_events, make_rules
    from rules.engine import RuleEngine

    measured: dict[str, dict[str, float]] = {}
    events = make_events(count)
    for rules in RULE_COUNTS:
        engine = RuleEngine(make_rules(rules))
        started = time.perf_counter()
        for event in events:
            engine.evaluate(event)
        elapsed = time.perf_counter() - started
        values = list(engine.state.values())
        encoding = time.perf_counter()
        for _ in range(20):
            for value in values:
                faust_json.dumps(value)
        encode_us = (time.perf_counter() - encoding) / (20 * len(values)) * 1e6
        sizes = [len(faust_json.dumps(value)) for value in values]
        key_sizes = [len(key.encode()) for key in engine.state]
        measured[str(rules)] = {
            "events_per_s": round(count / elapsed),
            "keys": len(sizes),
            "value_bytes_per_key": round(sum(sizes) / len(sizes), 1),
            "largest_value_bytes": max(sizes),
            "encode_us_per_value": round(encode_us, 2),
            "key_bytes_per_key": round(sum(key_sizes) / len(key_sizes), 1),
        }
    return measured


def baseline_round(count: int, folder: str) -> dict[str, dict[str, float]]:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([folder, str(ROOT)])}
    command = [sys.executable, "-m", "bench.rule_state", "--events", str(count), "--round-only"]
    result = subprocess.run(command, check=True, capture_output=True, text=True, env=environment, cwd=folder)
    measured: dict[str, dict[str, float]] = json.loads(result.stdout)
    return measured


def current_round(count: int) -> dict[str, dict[str, float]]:
    """In a subprocess too, so both sides pay the same start-up and neither warms the other."""
    command = [sys.executable, "-m", "bench.rule_state", "--events", str(count), "--round-only"]
    result = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    measured: dict[str, dict[str, float]] = json.loads(result.stdout)
    return measured


def summary(rounds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for layout in rounds[0]:
        first = dict(rounds[0][layout])
        first["events_per_s"] = statistics.median(r[layout]["events_per_s"] for r in rounds)
        out[layout] = first
    return out


def main(count: int, revision: str, rounds: int) -> dict[str, Any]:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "rules", "ingest", "detectors"],
                             check=True, capture_output=True).stdout
    with tempfile.TemporaryDirectory(prefix="cw-bench-state-") as folder:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        current_runs, baseline_runs = [], []
        for _ in range(rounds):
            current_runs.append(current_round(count))
            baseline_runs.append(baseline_round(count, folder))
    current, baseline = summary(current_runs), summary(baseline_runs)
    return {
        "benchmark": "rule_state",
        "cpu_count": os.cpu_count(),
        "events": count,
        "rounds": rounds,
        "typed": current,
        "baseline": {"revision": revision, **baseline},
        "value_bytes_saved_pct": {
            layout: round(100 * (1 - current[layout]["value_bytes_per_key"]
                                 / baseline[layout]["value_bytes_per_key"]), 1) for layout in current},
        "regression_pct": {
            layout: round(100 * (1 - current[layout]["events_per_s"] / baseline[layout]["events_per_s"]), 1)
            for layout in current},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--baseline-rev", default=BASELINE_REV)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--round-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.round_only:
        print(json.dumps(one_round(args.events)))
    else:
        print(json.dumps(main(args.events, args.baseline_rev, args.rounds)))
