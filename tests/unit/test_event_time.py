"""The time model: data decisions on each key's watermark, lateness, and absence on a lag-aware clock."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from ingest.events import DataQuality, Event
from rules.engine import RuleEngine, to_us
from rules.events import Alert
from rules.timekeeping import AllowedLateness, absence_clock
from tests.unit.rule_helpers import at, detection, reading, rule

PM_FOR = """
id: pm
title: PM2.5 high
condition: {type: threshold, field: pm25, above: 50, for: 60s}
resolve_after: 60s
"""
QUIET = "id: quiet\ntitle: q\ncondition: {type: absence, within: 60s}\n"
CROWD = """
id: crowd
title: Crowd
condition: {type: detection, classes: [person], for: 10s}
"""


def states(alerts: list[Alert]) -> list[tuple[str, float]]:
    return [(a.state, (a.time - at(0)).total_seconds()) for a in alerts]


def run(engine: RuleEngine, events: Sequence[Event]) -> list[Alert]:
    return [a for e in events for a in engine.evaluate(e)]


def test_the_wall_clock_never_moves_a_data_decision() -> None:
    engine = RuleEngine([rule(PM_FOR)])
    engine.evaluate(reading(0, pm25=80))
    assert engine.tick(at(3600)) == []  # an hour of wall clock, no data: nothing decided
    assert states(engine.evaluate(reading(3600, pm25=80))) == [("fired", 60)]  # the data's own time


def test_recorded_data_from_years_ago_fires_and_resolves_in_its_own_time() -> None:
    then = datetime(2017, 6, 3, 14, 0, tzinfo=UTC)
    engine = RuleEngine([rule(CROWD)])
    frames = [detection(s, 3 if s < 40 else 0, source="dji-2017") for s in range(0, 60, 2)]
    shifted = [f.model_copy(update={"time": then + (f.time - at(0))}) for f in frames]
    engine.tick(datetime.now(UTC))  # the 2026 clock ticks in the middle of it
    alerts = run(engine, shifted)
    assert [(a.state, a.time.year) for a in alerts] == [("fired", 2017), ("resolved", 2017)]
    assert alerts[1].resolved_at == then + timedelta(seconds=40)


def test_an_event_behind_the_watermark_is_late_counted_and_not_evaluated() -> None:
    engine = RuleEngine([rule(PM_FOR)])
    run(engine, [reading(0, pm25=80), reading(100, pm25=80)])  # fired at 60
    assert engine.evaluate(reading(50, pm25=10)) == [] and engine.was_late and engine.late_events == 1
    assert engine.evaluate(reading(110, pm25=80)) == [] and not engine.was_late
    assert states(run(engine, [reading(120, pm25=10), reading(181, pm25=10)])) == [("resolved", 180)]


def test_disorder_within_the_allowed_lateness_decides_as_if_in_order() -> None:
    in_order = [reading(s, pm25=80 if s % 200 < 120 else 10) for s in range(0, 600, 5)]
    reference = states(run(RuleEngine([rule(PM_FOR)]), in_order))
    assert reference  # it does fire and resolve
    shuffled = list(in_order)
    generator = random.Random(7)
    for i in range(0, len(shuffled) - 3, 3):  # neighbours swapped: at most 15 s out of order
        window = shuffled[i:i + 3]
        generator.shuffle(window)
        shuffled[i:i + 3] = window
    tolerant = RuleEngine([rule(PM_FOR)], lateness=AllowedLateness(sensor=20))
    assert states(run(tolerant, [*shuffled, reading(700, pm25=10), reading(800, pm25=10)]))[:len(reference)] \
        == reference
    assert tolerant.late_events == 0
    strict = RuleEngine([rule(PM_FOR)])
    run(strict, shuffled)
    assert strict.late_events > 0  # no lateness allowed: the same disorder is late


def test_with_lateness_decisions_wait_for_the_watermark() -> None:
    engine = RuleEngine([rule(CROWD)], lateness=AllowedLateness(camera=5))
    assert run(engine, [detection(s, 2) for s in range(0, 15)]) == []  # 14 s seen, watermark 9 s
    assert states(engine.evaluate(detection(15, 2))) == [("fired", 10)]


def test_two_models_at_one_instant_hold_if_either_sees_it() -> None:
    def seen_by(model: str, seconds: int, persons: int) -> Event:
        return detection(seconds, persons).model_copy(update={"model": model})

    for order in (("people", "fire"), ("fire", "people")):
        engine = RuleEngine([rule(CROWD)])
        events = [seen_by(m, s, 1 if m == "people" else 0) for s in range(0, 12) for m in order]
        events += [seen_by(m, 12, 0) for m in order]  # both say no: it ends at once
        assert states(run(engine, events)) == [("fired", 10), ("resolved", 12)]


def test_a_data_quality_report_does_not_move_a_detection_key() -> None:
    engine = RuleEngine([rule(CROWD)])
    engine.evaluate(detection(0, 2))
    report = DataQuality(source_id="cam-1", time=at(500), source_kind="camera", issue="dark", active=True)
    assert engine.evaluate(report) == []
    assert states(engine.evaluate(detection(5, 2))) == []  # not late: the report moved nothing


def test_ticks_visit_only_absence_keys() -> None:
    engine = RuleEngine([rule(PM_FOR), rule(QUIET)])
    run(engine, [reading(s, source=f"aq-{i}", pm25=80) for i in range(50) for s in (0, 1)])
    assert len(engine._timed_keys()) == 50  # one absence key per source; the threshold keys never tick
    assert len(engine.state) == 100


def test_absence_is_measured_from_arrival_not_event_time() -> None:
    engine = RuleEngine([rule(QUIET)])
    arrived = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    for s in range(0, 3600, 60):  # an hour of backlog, all arriving within a second
        engine.evaluate(reading(s, pm25=5), arrived=arrived + timedelta(milliseconds=s // 60))
    assert engine.tick(arrived + timedelta(seconds=30)) == []  # arrived 30 s ago: not silent
    [silent] = engine.tick(arrived + timedelta(seconds=61))
    assert silent.state == "fired"


def test_the_absence_clock_stops_while_the_pipeline_is_behind() -> None:
    now = to_us(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    assert absence_clock(now, []) == now  # caught up: the wall clock
    assert absence_clock(now, [now - 90_000_000, now - 5_000_000]) == now - 90_000_000  # where it has read to
    assert absence_clock(now, [None]) is None  # behind and nothing read yet: no conclusion
    engine = RuleEngine([rule(QUIET)])
    engine.evaluate(reading(0, pm25=5), arrived=at(0))
    clock = absence_clock(to_us(at(300)), [to_us(at(30))])  # 5 minutes later, still 4.5 behind
    assert clock is not None and engine.tick(datetime.fromtimestamp(clock / 1e6, UTC)) == []


def test_allowed_lateness_is_per_source_kind() -> None:
    lateness = AllowedLateness(camera=2, sensor=300)
    assert (lateness.us("camera"), lateness.us("sensor"), lateness.us("drone"), lateness.us("")) == (
        2_000_000, 300_000_000, 0, 0)


def test_input_progress_knows_which_partitions_lag() -> None:
    from citywatch.agents.progress import InputProgress

    progress = InputProgress(("readings", "detections"))
    ends = {("readings", 0): 10, ("detections", 0): 5, ("readings", 1): 3}
    fetched = {("detections", 0): 4}
    progress.processed("readings", 0, 6, 1000.0)  # offsets 7..9 still waiting
    progress.processed("readings", 1, 2, 1001.0)  # caught up
    assert progress.behind(0, lambda t, p: ends.get((t, p)), lambda t, p: fetched.get((t, p))) == [
        1000 * 1_000_000, None]  # readings behind; detections fetched but nothing processed
    assert progress.behind(1, lambda t, p: ends.get((t, p)), lambda t, p: None) == []
    progress.forget()
    assert progress.behind(1, lambda t, p: ends.get((t, p)), lambda t, p: None) == []  # nothing new fetched
