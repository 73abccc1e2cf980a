import asyncio
import random

import numpy as np
import pytest

from ingest.backoff import Backoff
from ingest.backpressure import BoundedBuffer
from ingest.motion import MotionGate, thumbnail
from ingest.quality import ImageQualityMonitor
from ingest.rate import AdaptiveRate, RateConfig
from ingest.settings import ImageQualitySettings, MotionSettings


def scene(square_at: int | None = None, level: int = 120, noise: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(level, noise, (288, 384, 3)), 0, 255).astype(np.uint8)
    if square_at is not None:
        image[100:160, square_at:square_at + 60] = 250
    return image


def test_motion_gate_sends_first_motion_and_heartbeats_only() -> None:
    gate = MotionGate(MotionSettings(heartbeat_s=30))
    decisions = [gate.decide(thumbnail(scene(seed=i)), now=float(i)) for i in range(40)]
    assert [d.reason for d in decisions if d.send] == ["first", "heartbeat"]
    assert decisions[30].reason == "heartbeat"  # sensor noise alone is not motion
    moved = gate.decide(thumbnail(scene(square_at=50, seed=99)), now=41.0)
    assert moved.send and moved.reason == "motion" and moved.changed_ratio > 0.01


def test_slow_change_accumulates_against_the_last_sent_frame() -> None:
    gate = MotionGate(MotionSettings(min_changed_ratio=0.01, heartbeat_s=1e9))
    gate.decide(thumbnail(scene(level=100)), 0.0)
    # Each step brightens by 8 levels: below the 25-level pixel threshold frame to frame,
    # but against the last sent frame the change passes it after four steps.
    reasons = [gate.decide(thumbnail(scene(level=100 + 8 * i)), float(i)).reason for i in range(1, 6)]
    assert reasons[:3] == ["static"] * 3 and "motion" in reasons


def test_adaptive_rate_boosts_and_falls_back() -> None:
    rate = AdaptiveRate(RateConfig(active_fps=4, idle_fps=0.5, hold_s=10))
    assert rate.fps(0) == 0.5
    rate.boost(now=5)
    assert rate.fps(6) == 4 and rate.fps(14.9) == 4 and rate.fps(15.1) == 0.5
    rate.boost(now=20, seconds=60)  # a rule asking for a closer look
    assert rate.fps(79) == 4
    with pytest.raises(ValueError):
        AdaptiveRate(RateConfig(active_fps=1, idle_fps=2))


def test_quality_reports_transitions_once() -> None:
    monitor = ImageQualityMonitor(ImageQualitySettings(frozen_after_s=5))
    dark = thumbnail(scene(level=5, noise=1))
    changes = [c for t in range(3) for c in monitor.observe(dark, float(t))]
    assert [(c.issue, c.active) for c in changes] == [("dark", True)]
    bright = thumbnail(scene(level=250, noise=1))
    changes = [c for t in range(3, 12) for c in monitor.observe(bright, float(t))]
    # the same image over and over: overexposed at once, frozen after 5 s, dark cleared
    expected = [("dark", False), ("overexposed", True), ("frozen", True)]
    assert [(c.issue, c.active) for c in changes] == expected
    normal = [c for c in monitor.observe(thumbnail(scene(seed=7)), 13.0)]
    assert {(c.issue, c.active) for c in normal} == {("overexposed", False), ("frozen", False)}


def test_backoff_grows_to_the_cap_with_jitter_and_resets() -> None:
    plain = Backoff(initial_s=1, max_s=10, jitter=False)
    assert [plain.next_delay() for _ in range(6)] == [1, 2, 4, 8, 10, 10]
    plain.reset()
    assert plain.next_delay() == 1
    jittered = Backoff(initial_s=1, max_s=10, rng=random.Random(1))
    delays = [jittered.next_delay() for _ in range(8)]
    assert all(0 <= d <= 10 for d in delays) and len(set(delays)) == 8


async def test_buffer_policies_count_what_they_drop() -> None:
    oldest: BoundedBuffer[int] = BoundedBuffer(2, "drop_oldest")
    newest: BoundedBuffer[int] = BoundedBuffer(2, "drop_newest")
    for i in range(5):
        await oldest.put(i)
        await newest.put(i)
    assert [await oldest.get(), await oldest.get()] == [3, 4] and oldest.dropped == 3
    assert [await newest.get(), await newest.get()] == [0, 1] and newest.dropped == 3


async def test_blocking_buffer_waits_for_the_consumer() -> None:
    buffer: BoundedBuffer[int] = BoundedBuffer(1, "block")
    await buffer.put(1)
    blocked = asyncio.create_task(buffer.put(2))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    assert await buffer.get() == 1
    await asyncio.wait_for(blocked, 1)
    assert await buffer.get() == 2 and buffer.dropped == 0
