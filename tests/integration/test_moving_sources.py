"""Place for moving sources: a drone's detections carry the frame's position, so a `near`
rule fires for a drone as for a fixed camera, live and when replayed from storage."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import asyncpg
import pytest

from detectors.events import Box, Detection
from ingest.events import GeoPoint
from rules.engine import RuleEngine
from rules.replay import replay
from storage.history import history
from storage.migrate import migrate
from storage.writer import EventWriter
from tests.unit.rule_helpers import at, rule

pytestmark = pytest.mark.integration

NEAR_THE_BRIDGE = """
id: people-at-the-bridge
title: People on the bridge
sources: {near: {lat: 52.5200, lon: 13.4050, within_m: 300}}
condition: {type: detection, classes: [person]}
"""


def seen_from(drone: str, seconds: float, lat: float, lon: float) -> Detection:
    return Detection(source_id=drone, time=at(seconds), frame_event_id=uuid4(), kind="drone", model="m",
                     model_version="1", frame_width=640, frame_height=480, inference_ms=1.0,
                     boxes=(Box(label="person", class_id=0, score=0.9, x1=1, y1=1, x2=9, y2=9),),
                     position=GeoPoint(lat=lat, lon=lon))


async def test_a_drone_near_the_bridge_fires_live_and_in_replay(pg_pool: asyncpg.Pool) -> None:
    drone = f"drone-{uuid4().hex[:6]}"
    far, near = seen_from(drone, 0, 52.5400, 13.4050), seen_from(drone, 10, 52.5201, 13.4051)  # 2.2 km, 14 m
    live = RuleEngine([rule(NEAR_THE_BRIDGE)])
    assert live.evaluate(far) == []
    [fired] = live.evaluate(near)
    assert fired.state == "fired" and fired.started_at == near.time

    async with pg_pool.acquire() as connection:
        await migrate(connection)
    await EventWriter(pg_pool).write([far, near])
    stored = [e async for e in history(pg_pool, [Detection], at(-1), at(20), [drone])]
    assert [e.position for e in stored if isinstance(e, Detection)] == [far.position, near.position]
    replayed = await replay([rule(NEAR_THE_BRIDGE)], history(pg_pool, [Detection], at(-1), at(20), [drone]),
                            at(20), tick_every=timedelta(seconds=10))
    assert [(a.alert_id, a.state, a.started_at) for a in replayed if a.state == "fired"] == [
        (fired.alert_id, "fired", fired.started_at)]
