"""Property-based tests of the engine's timing: hysteresis, windows, and replays."""

from __future__ import annotations

from datetime import timedelta
from itertools import accumulate

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.base import Seen, SourceInfo
from rules.conditions import FrequencyCondition
from rules.engine import RuleEngine, to_us
from tests.unit.rule_helpers import T0, at, detection, rule

steps = st.lists(st.tuples(st.integers(min_value=1, max_value=20), st.booleans()), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(steps=steps, for_s=st.integers(0, 30), resolve_s=st.integers(0, 30))
def test_fired_and_resolved_alternate_and_respect_for_and_resolve_after(
    steps: list[tuple[int, bool]], for_s: int, resolve_s: int
) -> None:
    the_rule = rule(f"id: p\ntitle: t\ncondition: {{type: detection, classes: [person], for: {for_s}s}}\n"
                    f"resolve_after: {resolve_s}s\n")
    times = list(accumulate(gap for gap, _ in steps))
    events = [detection(t, 1 if holds else 0) for t, (_, holds) in zip(times, steps, strict=True)]
    holds_at = {t: holds for t, (_, holds) in zip(times, steps, strict=True)}
    state: dict[str, dict[str, object]] = {}
    alerts = [a for e in events for a in RuleEngine([the_rule], state).evaluate(e)]

    alternating = ["fired", "resolved"] * (len(alerts) // 2) + ["fired"] * (len(alerts) % 2)
    assert [a.state for a in alerts] == alternating
    for alert in alerts:
        now = (alert.time - T0).total_seconds()
        if alert.state == "fired":
            start = (alert.started_at - T0).total_seconds()
            assert now - start >= for_s
            assert all(holds_at[t] for t in times if start <= t <= now)
        else:
            assert not any(holds_at[t] for t in times if now - resolve_s <= t <= now)
    # reprocessing every event against the stored state fires nothing new
    assert [a for e in events for a in RuleEngine([the_rule], state).evaluate(e)] == []
    # and a fresh engine reproduces the same alerts, ids included
    fresh = RuleEngine([the_rule])
    again = [a for e in events for a in fresh.evaluate(e)]
    assert [a.event_id for a in again] == [a.event_id for a in alerts]


@settings(max_examples=150, deadline=None)
@given(gaps=st.lists(st.integers(0, 30), min_size=1, max_size=80), count=st.integers(1, 6),
       within=st.integers(1, 60), mask=st.lists(st.booleans(), min_size=80, max_size=80))
def test_frequency_matches_a_brute_force_count(
    gaps: list[int], count: int, within: int, mask: list[bool]
) -> None:
    condition = FrequencyCondition.model_validate(
        {"type": "frequency", "of": {"type": "detection", "classes": ["person"]}, "count": count,
         "within": within})
    memory: dict[str, object] = {}
    counted: list[float] = []
    for t, person in zip(accumulate(gaps), mask, strict=False):
        event = detection(t, 1 if person else 0)
        seen = Seen(event=event, source_id="cam-1", kind="camera", now_us=to_us(event.time),
                    info=SourceInfo())
        if person:
            counted.append(t)
        observed = condition.observe(seen, memory)
        assert observed is not None
        expected = sum(1 for c in counted if c > t - within) >= count
        assert observed.holds == expected, (t, counted)


@settings(max_examples=60, deadline=None)
@given(silence_s=st.integers(1, 3000), within=st.integers(60, 1200))
def test_absence_fires_exactly_when_the_silence_exceeds_the_window(silence_s: int, within: int) -> None:
    engine = RuleEngine([rule(f"id: a\ntitle: t\ncondition: {{type: absence, within: {within}s}}\n")])
    engine.evaluate(detection(0, 0))
    fired = [a for s in range(1, silence_s + 1) for a in engine.tick(at(s))]
    if silence_s >= within:  # fewer than one event in (now - within, now]
        assert [(a.state, a.time) for a in fired] == [("fired", T0 + timedelta(seconds=within))]
    else:
        assert fired == []
