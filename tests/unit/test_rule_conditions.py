"""Each condition type and rule option, evaluated by the engine on hand-made events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ingest.events import DataQuality
from rules.base import SourceInfo
from rules.conditions.windowed import MeanCondition
from rules.engine import RuleEngine, to_us
from rules.events import Alert
from rules.yaml_source import YamlFileError
from tests.unit.rule_helpers import T0, at, detection, quality, reading, rule


def states(alerts: list[Alert]) -> list[tuple[str, float]]:
    return [(a.state, (a.time - T0).total_seconds()) for a in alerts]


def test_frequency_counts_matching_events_in_a_sliding_window() -> None:
    engine = RuleEngine([rule("""
id: flapping
title: Camera image freezes often
condition: {type: frequency, of: {type: data_quality, issues: [frozen]}, count: 3, within: 10m}
""")])
    alerts = [a for s in (0, 100, 200) for a in engine.evaluate(quality(s))]
    assert states(alerts) == [("fired", 200)]
    assert engine.evaluate(quality(250, issue="dark")) == []  # not counted, not looked at
    assert engine.tick(at(700)) == []  # the wall clock never moves a data decision
    assert states(engine.evaluate(quality(700, issue="dark"))) == [("resolved", 700)]  # the first two left


def test_absence_fires_on_time_passing_for_listed_and_seen_sources() -> None:
    engine = RuleEngine([rule("""
id: silent-sensor
title: Sensor silent
sources: {ids: [aq-1, aq-2]}
condition: {type: absence, within: 15m}
""")])
    assert engine.tick(at(0)) == []  # aq-1 and aq-2 are expected from now on
    engine.evaluate(reading(60, source="aq-1", pm25=3))
    fired = engine.tick(at(901))
    assert [(a.group_key, a.state) for a in fired] == [("aq-2", "fired")]  # never reported
    fired = engine.tick(at(961))
    assert [(a.group_key, a.state, a.evidence.values["events"]) for a in fired] == [("aq-1", "fired", 0)]
    resolved = engine.evaluate(reading(1000, source="aq-1", pm25=3))
    assert [(a.group_key, a.state) for a in resolved] == [("aq-1", "resolved")]


def test_flatline_fewer_than_n_events() -> None:
    engine = RuleEngine([rule("""
id: thin
title: Too few frames
condition: {type: flatline, within: 60s, min_count: 3}
""")])
    for s in (0, 10, 20, 30, 40, 50, 61):
        assert engine.evaluate(detection(s, 0)) == []
    assert states(engine.tick(at(125))) == [("fired", 125)]  # only one event in the last minute


def test_spike_on_counts_and_on_a_field_mean() -> None:
    counts = RuleEngine([rule("""
id: surge
title: Sudden crowd
condition: {type: spike, of: {type: detection, classes: [person]}, window: 60s, reference: 10m, factor: 3}
""")])
    alerts = [a for s in range(0, 660, 60) for a in counts.evaluate(detection(s))]  # 1 per minute
    assert alerts == []
    alerts = [a for s in range(661, 720, 10) for a in counts.evaluate(detection(s))]  # 6 in a minute
    assert [a.state for a in alerts] == ["fired"]
    assert alerts[0].evidence.values["reference_events"] >= 9

    means = RuleEngine([rule("""
id: pm-jump
title: PM2.5 jump
condition: {type: spike, field: pm25, window: 10m, reference: 1h, factor: 2}
""")])
    quiet = [a for s in range(0, 4200, 300) for a in means.evaluate(reading(s, pm25=10))]
    jump = [a for s in (4300, 4400) for a in means.evaluate(reading(s, pm25=35))]
    assert quiet == [] and [a.state for a in jump] == ["fired"]


def test_spike_down_needs_a_reference() -> None:
    engine = RuleEngine([rule("""
id: drop
title: Traffic collapsed
condition: {type: spike, of: {type: detection, classes: [car]}, window: 60s, reference: 5m,
            direction: down, factor: 4, min_reference_events: 10}
""")])
    cars = [a for s in range(0, 300, 10) for a in engine.evaluate(detection(s, label="car"))]
    none = [a for s in range(300, 400, 10) for a in engine.evaluate(detection(s, label="bus"))]
    assert cars == [] and [a.state for a in none] == ["fired"]


def test_change_fires_when_a_field_changes_by_enough() -> None:
    engine = RuleEngine([rule("""
id: aqi-band
title: AQI changed
condition: {type: change, field: pm10, min_delta: 5}
""")])
    seq = [(0, 10.0), (60, 12.0), (120, 30.0), (180, 31.0)]
    alerts = [a for s, v in seq for a in engine.evaluate(reading(s, pm10=v))]
    assert states(alerts) == [("fired", 120), ("resolved", 180)]
    assert alerts[0].evidence.values == {"pm10": 30.0, "previous": 12.0}


def test_rate_of_change_over_a_window() -> None:
    engine = RuleEngine([rule("""
id: rising
title: PM2.5 rising fast
condition: {type: rate_of_change, field: pm25, per: 10m, over: 30m, above: 20}
""")])
    seq = [(0, 10.0), (600, 15.0), (1200, 30.0), (1800, 80.0)]
    alerts = [a for s, v in seq for a in engine.evaluate(reading(s, pm25=v))]
    assert states(alerts) == [("fired", 1800)]  # (80 - 10) / 30 min * 10 min = 23.3
    assert alerts[0].evidence.values["rate"] == pytest.approx(70 / 3)


def test_all_any_and_sequence_on_one_source() -> None:
    parts = """[{type: data_quality, issues: [dark]}, {type: detection, classes: [person]}]"""

    def composite(kind: str, within: str = "") -> RuleEngine:
        options = f"within: {within}, " if within else ""
        condition = f"{{type: {kind}, {options}conditions: {parts}}}"
        return RuleEngine([rule(f"id: c\ntitle: t\ncondition: {condition}\n")])

    both, either, order = composite("all", "60s"), composite("any"), composite("sequence", "60s")
    events = [detection(0), quality(10, issue="dark"), detection(20, 0)]
    assert states([a for e in events for a in both.evaluate(e)]) == [("fired", 10)]
    assert states([a for e in events for a in either.evaluate(e)]) == [("fired", 0)]
    assert [a for e in events for a in order.evaluate(e)] == []  # person came before dark
    later = [a for e in (detection(30), detection(31)) for a in order.evaluate(e)]
    assert states(later) == [("fired", 30)]
    assert order.tick(at(200)) == []  # the wall clock does not move data decisions
    assert states(order.evaluate(detection(200, 0))) == [("resolved", 200)]  # the sequence left its window


def test_composite_across_sources_by_distance() -> None:
    text = """
id: smoke-and-pm
title: Smoke seen and PM2.5 rising nearby
severity: critical
condition:
  type: all
  within: 10m
  near_m: 500
  conditions:
    - {type: detection, classes: [smoke], sources: {kinds: [camera]}}
    - {type: threshold, field: pm25, above: 50, sources: {kinds: [sensor]}}
"""
    catalog = {"cam-1": SourceInfo(kind="camera", position=(48.8566, 2.3522)),
               "aq-near": SourceInfo(kind="sensor", position=(48.8590, 2.3540)),   # ~300 m
               "aq-far": SourceInfo(kind="sensor", position=(48.8800, 2.3522))}    # ~2.6 km
    engine = RuleEngine([rule(text)], sources=catalog)
    assert engine.evaluate(detection(0, label="smoke")) == []
    assert engine.evaluate(reading(60, source="aq-far", pm25=90)) == []
    fired = engine.evaluate(reading(120, source="aq-near", pm25=90))
    assert [(a.state, a.group_key, a.severity) for a in fired] == [("fired", "cam-1", "critical")]
    assert len(fired[0].evidence.event_ids) == 2
    assert [p["source"] for p in fired[0].evidence.values["parts"]] == ["cam-1", "aq-near"]
    smoke_left = engine.evaluate(reading(700, source="aq-near", pm25=1))
    assert states(smoke_left) == [("resolved", 700)]  # the smoke left the window
    assert engine.across_rules_for(reading(800, source="aq-near", pm25=1)) == ["smoke-and-pm"]
    per_source = RuleEngine([rule(text)], sources=catalog, scope="per_source")
    assert per_source.evaluate(detection(0, label="smoke")) == []


def test_only_events_a_part_reads_are_forwarded_across_sources() -> None:
    """A rule joining two named sensors gets their readings, not every reading of the city
    (each forwarded event is a message on the correlate topic and a state write there)."""
    engine = RuleEngine([rule("""
id: pair
title: PM2.5 and NO2 high side by side
condition:
  type: all
  within: 5m
  near_m: 500
  conditions:
    - {type: threshold, field: pm25, above: 50, sources: {ids: [east]}}
    - {type: threshold, field: no2, above: 100, sources: {ids: [west]}}
""")], scope="per_source")
    assert engine.across_rules_for(reading(0, source="east", pm25=70)) == ["pair"]
    assert engine.across_rules_for(reading(0, source="west", no2=150)) == ["pair"]
    assert engine.across_rules_for(reading(0, source="aq-elsewhere", pm25=70)) == []


def test_group_by_zone_and_by_track() -> None:
    zones = RuleEngine([rule("""
id: loiter
title: Loitering
group_by: zone
condition: {type: detection, classes: [person], for: 5s}
""")])
    alerts = [a for s in range(0, 7) for a in zones.evaluate(detection(s, 1, zones=("gate",)))]
    assert [(a.group_key, a.source_id) for a in alerts] == [("cam-1/gate", "cam-1")]
    resolved = zones.evaluate(detection(8, 0))  # the zone emptied: no box names it any more
    assert [(a.state, a.group_key) for a in resolved] == [("resolved", "cam-1/gate")]
    tracks = RuleEngine([rule("""
id: each-person
title: Person
group_by: track
condition: {type: detection, classes: [person]}
""")])
    alerts = tracks.evaluate(detection(0, 2, track_ids=(7, 9)))
    assert sorted(a.group_key for a in alerts) == ["cam-1#7", "cam-1#9"]


def test_detection_in_zone_with_dwell() -> None:
    engine = RuleEngine([rule("""
id: dwell
title: Stays at the door
condition: {type: detection, classes: [person], zone: door, min_dwell: 30s}
""")])
    from detectors.events import Box
    box = Box(label="person", class_id=0, score=0.9, x1=0, y1=0, x2=1, y2=1, zones=("door",), dwell_s=10)
    short = detection(0).model_copy(update={"boxes": (box,)})
    long = detection(1).model_copy(update={"boxes": (box.model_copy(update={"dwell_s": 31.0}),)})
    assert engine.evaluate(short) == []
    assert [a.evidence.values["zone"] for a in engine.evaluate(long)] == ["door"]


def test_for_and_resolve_after_fire_at_their_due_event_time() -> None:
    engine = RuleEngine([rule("""
id: crowd
title: Crowd
condition: {type: detection, classes: [person], min_count: 3, for: 30s}
resolve_after: 60s
""")])
    assert engine.evaluate(detection(0, 5)) == []
    assert engine.tick(at(31)) == []  # the wall clock never fires a data timer
    # The next frame (at 40 s, empty) moves the camera's time past 30 s: the crowd, last seen
    # at 0 s and not seen gone before 40 s, held its 30 s; the alert fires at 30 s, not 40 s.
    assert states(engine.evaluate(detection(40, 0))) == [("fired", 30)]
    assert engine.evaluate(detection(99, 0)) == []
    assert states(engine.evaluate(detection(101, 0))) == [("resolved", 100)]


def test_a_for_that_ends_on_a_false_event_does_not_fire() -> None:
    engine = RuleEngine([rule("""
id: crowd
title: Crowd
condition: {type: detection, classes: [person], min_count: 3, for: 30s}
""")])
    events = [detection(0, 5), detection(30, 0)]  # held for [0, 30): not yet 30 s at 30 s
    assert [a for e in events for a in engine.evaluate(e)] == []


def test_realert_with_backoff_and_cap_then_cooldown() -> None:
    engine = RuleEngine([rule("""
id: fire
title: Fire
condition: {type: detection, classes: [fire]}
realert: {every: 10m, backoff: 2, max: 30m}
cooldown: 1h
""")])
    first = engine.evaluate(detection(0, label="fire"))
    reminders = [a for s in range(60, 7260, 60) for a in engine.evaluate(detection(s, label="fire"))]
    assert [(a.reminder, (a.time - T0).total_seconds() / 60) for a in reminders] == [
        (1, 10), (2, 30), (3, 60), (4, 90), (5, 120)]  # +10, +20, then capped at +30 minutes
    assert len({a.event_id for a in first + reminders}) == 6 and {a.alert_id for a in reminders} == {
        first[0].alert_id}
    assert [a.state for a in engine.evaluate(detection(7300, 0, label="fire"))] == ["resolved"]
    assert engine.evaluate(detection(7400, label="fire")) == []  # cooling down
    [again] = engine.evaluate(detection(7300 + 3601, label="fire"))
    assert again.state == "fired" and again.time == at(7300 + 3600)  # when the cooldown ended


def test_schedule_limits_firing_to_its_windows() -> None:
    engine = RuleEngine([rule("""
id: school-hours
title: Person on the school roof
condition: {type: detection, classes: [person]}
schedule:
  timezone: Europe/Paris
  windows: [{days: [sat, sun], start: "22:00", end: "06:00"}]
""")])
    assert engine.evaluate(detection(0)) == []  # Monday 13:00 in Paris
    saturday_night = 5 * 86400 + 10 * 3600  # Saturday 23:00 in Paris
    assert [a.state for a in engine.evaluate(detection(saturday_night))] == ["fired"]
    sunday_morning = saturday_night + 7 * 3600 + 60  # 06:01: the window closed
    assert [a.state for a in engine.evaluate(detection(sunday_morning))] == ["resolved"]


def test_silences_and_inhibition_mute_but_keep_alerts() -> None:
    from rules.silences import Silence
    rules = [rule("""
id: offline
title: Camera offline
severity: critical
condition: {type: data_quality, issues: [offline]}
"""), rule("""
id: frozen
title: Image frozen
inhibited_by: [offline]
condition: {type: data_quality, issues: [frozen]}
""")]
    silence = Silence(id="s1", rule_id="frozen", group_key="cam-2", until=at(600), reason="lens work",
                      created_by="ana")
    engine = RuleEngine(rules, silences=[silence])
    engine.evaluate(quality(0, issue="offline"))
    (inhibited,) = engine.evaluate(quality(1, issue="frozen"))
    assert inhibited.muted == "inhibited by offline"
    (silenced,) = engine.evaluate(quality(2, issue="frozen", source="cam-2"))
    assert silenced.muted is not None and "lens work" in silenced.muted
    (loud,) = engine.evaluate(quality(3, issue="frozen", source="cam-3"))
    assert loud.muted is None


def test_selection_by_tag_and_place() -> None:
    catalog = {"cam-1": SourceInfo(kind="camera", tags=frozenset({"school"}), position=(48.0, 2.0)),
               "cam-2": SourceInfo(kind="camera", tags=frozenset({"park"}), position=(48.1, 2.0))}
    tagged = RuleEngine([rule("id: a\ntitle: t\nsources: {tags: [school]}\n"
                              "condition: {type: detection, classes: [person]}\n")], sources=catalog)
    assert [a.group_key for s in ("cam-1", "cam-2") for a in tagged.evaluate(detection(0, source=s))] == [
        "cam-1"]
    near = RuleEngine([rule("id: b\ntitle: t\nsources: {near: {lat: 48.1005, lon: 2.0, within_m: 100}}\n"
                            "condition: {type: detection, classes: [person]}\n")], sources=catalog)
    assert [a.group_key for s in ("cam-1", "cam-2") for a in near.evaluate(detection(0, source=s))] == [
        "cam-2"]
    polygon = RuleEngine([rule("id: c\ntitle: t\nsources: {inside: [[47.9, 1.9], [47.9, 2.1], [48.05, 2.1],"
                               " [48.05, 1.9]]}\ncondition: {type: threshold, field: pm25, above: 1}\n")])
    inside = reading(0, source="mobile", position=(48.0, 2.0), pm25=5)
    outside = reading(0, source="mobile-2", position=(48.2, 2.0), pm25=5)
    assert [a.group_key for e in (inside, outside) for a in polygon.evaluate(e)] == ["mobile"]


@pytest.mark.parametrize(("snippet", "message"), [
    ("condition: {type: sequence, conditions: [{type: detection, classes: [a]}, "
     "{type: detection, classes: [b]}]}", "a sequence needs 'within'"),
    ("condition: {type: any, near_m: 5, within: 1m, conditions: [{type: detection, classes: [a]}, "
     "{type: detection, classes: [b]}]}", "'near_m' joins parts across sources"),
    ("condition: {type: detection, classes: [a]}\nschedule: {timezone: Mars/Olympus, windows: [{}]}",
     "unknown time zone"),
    ("condition: {type: detection, classes: [a]}\ntemplates: {sms: '{{ alert.title '}", "template line 1"),
    ("condition: {type: absence, within: 1m}\ngroup_by: zone", "absence is per source"),
    ("condition: {type: spike, window: 1m, reference: 1h, field: pm25, of: {type: detection, classes: [a]}}",
     "not both"),
])
def test_incoherent_rules_are_refused_with_a_reason(snippet: str, message: str) -> None:
    with pytest.raises(YamlFileError, match=message):
        rule(f"id: x\ntitle: t\n{snippet}\n")


def test_alert_time_fields_are_consistent() -> None:
    engine = RuleEngine([rule("id: p\ntitle: t\ncondition: {type: detection, classes: [person], for: 2s}\n")])
    alerts = [a for s in (0, 1, 2, 3) for a in engine.evaluate(detection(s))]
    assert alerts[0].started_at == T0 and alerts[0].time == T0 + timedelta(seconds=2)
    (resolved,) = engine.evaluate(detection(5, 0))
    assert resolved.started_at == T0 and resolved.resolved_at == at(5)


def test_an_operator_resolves_by_hand_and_it_fires_again_only_anew() -> None:
    engine = RuleEngine([rule("id: fire\ntitle: Fire\n"
                              "condition: {type: detection, classes: [fire], for: 10s}\n")])
    engine.evaluate(detection(0, label="fire"))
    (fired,) = engine.evaluate(detection(10, label="fire"))
    assert engine.force_resolve("fire", "cam-1", "not-this-one", at(11), "ana") == []
    (closed,) = engine.force_resolve("fire", "cam-1", str(fired.alert_id), at(11), "ana")
    assert (closed.state, closed.alert_id) == ("resolved", fired.alert_id)
    assert closed.evidence.values["resolved_by"] == "ana"
    assert engine.force_resolve("fire", "cam-1", str(fired.alert_id), at(12), "ana") == []  # once
    assert engine.evaluate(detection(15, label="fire")) == []  # holding again, but a fresh `for` starts
    (again,) = engine.evaluate(detection(25, label="fire"))
    assert again.state == "fired" and again.alert_id != fired.alert_id


def test_a_data_quality_report_is_not_the_data_an_absence_rule_waits_for() -> None:
    engine = RuleEngine([rule("""
id: silent-sensor
title: Sensor silent
sources: {ids: [aq-1]}
condition: {type: absence, within: 3m}
""")])
    engine.tick(at(0))
    engine.evaluate(reading(10, source="aq-1", pm25=3))
    [fired] = engine.tick(at(200))
    assert fired.state == "fired"
    missing = DataQuality(source_id="aq-1", time=at(201), source_kind="sensor", issue="missing_reports",
                          active=True)
    assert engine.evaluate(missing) == []  # the receiver's own "missing" report: still silent
    assert engine.tick(at(260)) == []  # one outage, one alert, no false "resolved"
    [resolved] = engine.evaluate(reading(300, source="aq-1", pm25=3))
    assert resolved.state == "resolved" and resolved.alert_id == fired.alert_id


MEAN_RULE = """
id: pm25-daily
title: PM2.5 daily mean above the WHO guideline
condition: {type: mean, field: pm25, over: 24h, above: 15}
"""


def test_a_daily_mean_fires_once_three_quarters_of_the_day_is_covered() -> None:
    engine = RuleEngine([rule(MEAN_RULE)])
    fired = [(hour, a.state, a.evidence.values) for hour in range(30)
             for a in engine.evaluate(reading(hour * 3600, pm25=20.0))]
    # 18 of 24 hourly slices (75 %) hold a reading at hour 17: the mean counts from then
    assert [(hour, state) for hour, state, _ in fired] == [(17, "fired")]
    assert fired[0][2] == {"pm25": 20.0, "samples": 18, "coverage": 0.75, "over_s": 86400.0}
    resolved = [(hour, a.state, a.evidence.values["pm25"]) for hour in range(30, 60)
                for a in engine.evaluate(reading(hour * 3600, pm25=5.0))]
    # hours 14-37: sixteen readings of 20 and eight of 5, a mean of 15.0, no longer above 15
    assert [(hour, state) for hour, state, _ in resolved] == [(37, "resolved")]
    assert resolved[0][2] == pytest.approx((16 * 20 + 8 * 5) / 24, abs=1e-6)


def test_a_mean_is_the_mean_of_the_window_and_its_memory_stays_bounded() -> None:
    import random

    condition = rule(MEAN_RULE.replace("over: 24h", "over: 1h")).condition
    assert isinstance(condition, MeanCondition)
    chance = random.Random(7)
    memory: dict[str, Any] = {}
    seen: list[tuple[int, float]] = []
    width_us = 3600 * 1_000_000 // 24
    for second in range(0, 4 * 3600, 7):  # every 7 s for four hours: 2,057 readings
        value = chance.uniform(0, 40)
        seen.append((second, value))
        observation = condition.observe(RuleEngine([]).seen(reading(second, pm25=value)), memory)
        assert observation is not None and len(memory["b"]) <= MeanCondition.SLICES
        now_slice = to_us(at(second)) // width_us
        window = [v for s, v in seen if now_slice - 24 < to_us(at(s)) // width_us <= now_slice]
        assert observation.values["pm25"] == pytest.approx(sum(window) / len(window), abs=1e-6)
        assert observation.values["samples"] == len(window)


def test_a_mean_needs_its_coverage_and_a_limit() -> None:
    engine = RuleEngine([rule(MEAN_RULE)])
    sparse = [a for hour in range(0, 48, 3) for a in engine.evaluate(reading(hour * 3600, pm25=90.0))]
    assert sparse == []  # one reading every 3 h covers a third of the slices: no daily mean
    with pytest.raises(YamlFileError, match="give 'above' or 'below'"):
        rule("id: m\ntitle: m\ncondition: {type: mean, field: pm25, over: 24h}\n")
