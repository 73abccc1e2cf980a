"""Live equals replay: a worker on the real broker and database, fed data it cannot keep up
with, decides what `citywatch rules test` decides over the stored history afterwards (alert
ids, states, started_at, resolved_at), whatever the lag:
- recorded footage from 2017, every frame published at once, so the detector runs far behind
  the camera's own time: alerts fire and resolve in 2017;
- three hours of readings from two sensors published in one burst: the `for`, `resolve_after`
  and window decisions match; absence, the one processing-time rule, stays quiet live (the data
  arrived without a pause) where the replay, which only has event times, sees the gap; a
  reading an hour behind its sensor's stream is stored, marked late and evaluated by neither.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import cv2
import numpy as np
import pytest

from citywatch.publisher import KafkaPublisher
from citywatch.topics import Topics, ensure_topics
from ingest.events import FrameHeader, Reading
from ingest.frame_codec import Frame, encode_frame
from tests.worker_process import Worker, cli, until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

PEOPLE = """
id: people-{run}
title: People in view
sources: {{ids: [rec-{run}]}}
condition: {{type: detection, classes: [person], for: 2s}}
resolve_after: 1s
"""
PM = """
id: pm-{run}
title: PM2.5 high for ten minutes
sources: {{ids: [west-{run}, east-{run}]}}  # not kinds: the database holds other tests' sensors
condition: {{type: threshold, field: pm25, above: 50, for: 10m}}
resolve_after: 5m
"""
BURSTS = """
id: bursts-{run}
title: Three PM2.5 peaks within half an hour
sources: {{ids: [west-{run}, east-{run}]}}  # not kinds: the database holds other tests' sensors
condition: {{type: frequency, of: {{type: threshold, field: pm25, above: 70}}, count: 3, within: 30m}}
"""
SILENT = """
id: silent-{run}
title: Sensor silent
sources: {{ids: [west-{run}, east-{run}]}}  # not kinds: the database holds other tests' sensors
condition: {{type: absence, within: 5m}}
"""
FIELDS = ("alert_id", "state", "time", "started_at", "resolved_at")


def config_text(tmp: Path, run: str, bootstrap: str, dsn: str, model: Path | None) -> str:
    spec = f'{{name: yolov8n-coco, type: onnx-yolo, path: "{model}", version: "8.0-coco80"}}'
    models = f"models:\n  - {spec}\n" if model else ""
    return f"""
broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}, app_id: {run}, partitions: 2}}
storage: {{dsn: "{dsn}", batch_window_s: 0.3}}
infra: {{state_dir: "{tmp / 'state'}"}}
rules: {{paths: ["{tmp / 'rules'}"], reload_every_s: 1, tick_every_s: 0.5}}
{models}worker: {{loglevel: info}}
"""


@pytest.fixture
async def send(bootstrap: str) -> AsyncIterator[dict[str, Any]]:
    holder: dict[str, Any] = {}
    yield holder
    if "publisher" in holder:
        await holder["publisher"].stop()


async def start(tmp_path: Path, run: str, bootstrap: str, dsn: str, rules: dict[str, str],
                model: Path | None, holder: dict[str, Any]) -> tuple[Worker, KafkaPublisher, Path]:
    (tmp_path / "rules").mkdir()
    for name, text in rules.items():
        (tmp_path / "rules" / f"{name}.yaml").write_text(text.format(run=run))
    config = tmp_path / "citywatch.yaml"
    config.write_text(config_text(tmp_path, run, bootstrap, dsn, model))
    await ensure_topics(bootstrap, Topics(run), partitions=2)
    publisher = KafkaPublisher(bootstrap, Topics(run), 8 << 20)
    await publisher.start()
    holder["publisher"] = publisher
    worker = Worker(config, tmp_path / "worker.log")
    worker.start()
    return worker, publisher, config


def replayed(config: Path, rules_dir: Path, start: datetime, end: datetime) -> list[dict[str, Any]]:
    result = cli(config, "test", *sorted(str(p) for p in rules_dir.glob("*.yaml")),
                 "--from", start.isoformat(), "--to", end.isoformat(), "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def as_replay(row: asyncpg.Record) -> dict[str, Any]:
    """An alerts row in the shape `rules test --json` prints."""
    def text(value: Any) -> Any:
        return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else (
            str(value) if value is not None else None)
    return {"rule_id": row["rule_id"], "group_key": row["group_key"], **{f: text(row[f]) for f in FIELDS}}


def key(alert: dict[str, Any]) -> tuple[Any, ...]:
    def moment(value: str | None) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (alert["rule_id"], alert["group_key"], str(alert["alert_id"]), alert["state"],
            *(moment(alert[f]) for f in ("time", "started_at", "resolved_at")))


async def live_alerts(pool: asyncpg.Pool, run: str) -> set[tuple[Any, ...]]:
    rows = await pool.fetch("SELECT * FROM alerts WHERE rule_id LIKE $1", f"%-{run}")
    return {key(as_replay(row)) for row in rows}


def frames_of(video: Path, run: str, count: int, then: datetime) -> list[bytes]:
    """`count` frames of the video, 0.25 s apart in 2017, with a dark stretch in the middle."""
    capture = cv2.VideoCapture(str(video))
    frames: list[bytes] = []
    read = 0
    while len(frames) < count:
        ok, image = capture.read()
        assert ok, "the video ran out"
        read += 1
        if read % 3:
            continue  # every third frame: people move between frames
        if count // 3 <= len(frames) < count // 2:
            image = np.zeros_like(image)  # the lights went out: nobody in view
        ok, jpeg = cv2.imencode(".jpg", image)
        header = FrameHeader(source_id=f"rec-{run}", time=then + timedelta(seconds=0.25 * len(frames)),
                             sequence=len(frames), width=image.shape[1], height=image.shape[0])
        frames.append(encode_frame(Frame(header, jpeg.tobytes())))
    capture.release()
    return frames


async def test_recorded_footage_behind_a_slow_detector_decides_as_its_replay(
    tmp_path: Path, bootstrap: str, dsn: str, pg_pool: asyncpg.Pool, vtest_avi: Path, yolo_onnx: Path,
    send: dict[str, Any],
) -> None:
    run = f"lr{uuid4().hex[:8]}"
    then = datetime(2017, 6, 3, 14, 0, tzinfo=UTC)
    rules = {"people": PEOPLE}
    worker, publisher, config = await start(tmp_path, run, bootstrap, dsn, rules, yolo_onnx, send)
    try:
        frames = frames_of(vtest_avi, run, 90, then)
        for raw in frames:  # 22 s of footage at once: the detector falls far behind its time
            await publisher.send("frames", f"rec-{run}".encode(), raw)
        await until("every frame detected", lambda: pg_pool.fetchval(
            "SELECT count(*) = $2 FROM detections WHERE source_id = $1", f"rec-{run}", len(frames)), worker)
        replay = {key(a) for a in replayed(config, tmp_path / "rules", then, then + timedelta(minutes=1))}
        assert {a[3] for a in replay} == {"fired", "resolved"}, replay  # it fires, and resolves in the dark
        assert all(a[4].year == 2017 for a in replay)  # decided in the footage's own time

        async def same() -> bool:
            return await live_alerts(pg_pool, run) == replay

        await until("the live alerts to equal the replay", same, worker)
    finally:
        worker.stop()


async def test_hours_of_backlog_published_at_once_decide_as_their_replay(
    tmp_path: Path, bootstrap: str, dsn: str, pg_pool: asyncpg.Pool, send: dict[str, Any],
) -> None:
    run = f"lb{uuid4().hex[:8]}"
    rules = {"pm": PM, "bursts": BURSTS, "silent": SILENT}
    worker, publisher, config = await start(tmp_path, run, bootstrap, dsn, rules, None, send)
    end = datetime.now(UTC).replace(microsecond=0)
    start_at = end - timedelta(hours=3)
    readings: list[Reading] = []
    for sensor, phase in ((f"east-{run}", 0.0), (f"west-{run}", 1.7)):
        for step in range(0, 3 * 3600, 30):
            if sensor.startswith("east") and 3600 <= step < 3600 + 1200:
                continue  # east was silent for 20 minutes, an hour in
            level = 45 + 35 * np.sin(phase + step / 900)
            readings.append(Reading(source_id=sensor, time=start_at + timedelta(seconds=step),
                                    values={"pm25": round(float(level), 1)}, units={"pm25": "µg/m³"}))
    try:
        for reading in readings:  # three hours in one burst
            await publisher.send("readings", reading.source_id.encode(), reading.to_json())
        # one reading from an hour ago arrives after the rest: late, stored, marked, not evaluated
        straggler = Reading(source_id=f"west-{run}", time=start_at + timedelta(minutes=61),
                            values={"pm25": 400.0}, units={"pm25": "µg/m³"})
        await publisher.send("readings", straggler.source_id.encode(), straggler.to_json())
        stored = len(readings) + 1
        await until("every reading stored", lambda: pg_pool.fetchval(
            "SELECT count(*) = $2 FROM readings WHERE source_id LIKE $1", f"%-{run}", stored), worker)
        [mark] = await until("the late mark", lambda: pg_pool.fetch(
            "SELECT body FROM source_events WHERE issue = 'late' AND source_id = $1", f"west-{run}"), worker)
        assert json.loads(mark["body"])["about_event"] == str(straggler.event_id)
        replay = {key(a) for a in replayed(config, tmp_path / "rules", start_at, end)}
        by_rule = {rule: {a for a in replay if a[0] == f"{rule}-{run}"} for rule in rules}
        assert by_rule["pm"] and by_rule["bursts"], replay
        assert {a[1] for a in by_rule["silent"]} == {f"east-{run}"}  # the replay sees the gap in event time
        expected = by_rule["pm"] | by_rule["bursts"]

        seen: set[tuple[Any, ...]] = set()

        async def same() -> bool:
            seen.clear()
            seen.update(a for a in await live_alerts(pg_pool, run) if not a[0].startswith("silent-"))
            return seen == expected

        try:
            await until("the live alerts to equal the replay", same, worker)
        except AssertionError as exc:
            raise AssertionError(f"only live: {sorted(seen - expected, key=str)[:6]}; only replayed: "
                                 f"{sorted(expected - seen, key=str)[:6]}\n{exc}") from None
        live_silent = {a for a in await live_alerts(pg_pool, run) if a[0].startswith("silent-")}
        assert live_silent == set()  # live, the data arrived without a pause: nobody was silent
    finally:
        worker.stop()
