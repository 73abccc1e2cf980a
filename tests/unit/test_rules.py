from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from detectors.events import Box, Detection
from ingest.events import Reading
from rules.engine import RuleEngine
from rules.loader import load_rules, parse_rules
from rules.yaml_source import YamlFileError

CROWD = """
id: crowd
title: Crowd forming
condition:
  type: detection
  classes: [person]
  min_count: 3
  for: 5s
resolve_after: 10s
notify:
  - recipient: ops
    channels: [email]
"""
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def detection(seconds: float, persons: int, source: str = "cam-1") -> Detection:
    box = Box(label="person", class_id=0, score=0.9, x1=0, y1=0, x2=1, y2=1)
    return Detection(source_id=source, time=T0 + timedelta(seconds=seconds), frame_event_id=uuid4(),
                     model="m", model_version="1", frame_width=10, frame_height=10,
                     boxes=(box,) * persons, inference_ms=1.0)


def test_rule_file_errors_name_line_and_key() -> None:
    text = CROWD.replace("min_count: 3", "min_cuont: 3").replace("for: 5s", "for: soon")
    with pytest.raises(YamlFileError) as info:
        parse_rules(text, "crowd.yaml")
    messages = [str(e) for e in info.value.errors]
    assert any(m.startswith("crowd.yaml:7:3: condition.min_cuont: unknown key") for m in messages)
    expected = "crowd.yaml:8:3: condition.for: Value error, 'soon' is not a duration"
    assert any(m.startswith(expected) for m in messages)


def test_yaml_anchors_and_syntax_errors_are_refused() -> None:
    with pytest.raises(YamlFileError, match="anchors and aliases"):
        parse_rules("a: &x 1\nb: *x\n", "bomb.yaml")
    with pytest.raises(YamlFileError, match=r"bad.yaml:2:\d+: YAML syntax"):
        parse_rules("id: x\n  title: [unclosed\n", "bad.yaml")


def test_bad_file_does_not_hide_good_ones(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(CROWD)
    (tmp_path / "bad.yaml").write_text("id: Bad Id\ntitle: x\ncondition: {type: nope}\n")
    rules, errors = load_rules([tmp_path])
    assert [r.id for r in rules] == ["crowd"]
    assert {e.file for e in errors} == {str(tmp_path / "bad.yaml")}


def test_detection_rule_fires_once_after_duration_and_resolves() -> None:
    engine = RuleEngine(parse_rules(CROWD, "crowd.yaml"))
    fired = [a for s in range(0, 10) for a in engine.evaluate(detection(s, 4))]
    assert [(a.state, a.time - T0) for a in fired] == [("fired", timedelta(seconds=5))]
    assert fired[0].started_at == T0 and fired[0].notify[0].recipient == "ops"
    resolved = [a for s in range(10, 25) for a in engine.evaluate(detection(s, 1))]
    assert [a.state for a in resolved] == ["resolved"]
    assert resolved[0].alert_id == fired[0].alert_id


def test_replayed_events_refire_nothing_and_ids_are_deterministic() -> None:
    events = [detection(s, 4) for s in range(8)]
    first = RuleEngine(parse_rules(CROWD, "c.yaml"))
    state: dict[str, dict[str, object]] = {}
    alerts = [a for e in events for a in RuleEngine(first.rules, state).evaluate(e)]
    replay = [a for e in events for a in RuleEngine(first.rules, state).evaluate(e)]
    assert len(alerts) == 1 and replay == []
    engine = RuleEngine(first.rules)
    fresh = [a for e in events for a in engine.evaluate(e)]
    assert fresh[0].alert_id == alerts[0].alert_id and fresh[0].event_id == alerts[0].event_id


def test_groups_are_per_source() -> None:
    engine = RuleEngine(parse_rules(CROWD, "c.yaml"))
    alerts = [a for s in range(7) for src in ("a", "b") for a in engine.evaluate(detection(s, 5, src))]
    assert sorted(a.group_key for a in alerts) == ["a", "b"]


def test_threshold_rule_on_readings_uses_event_time() -> None:
    rule = parse_rules(
        "id: no2\ntitle: NO2\ncondition: {type: threshold, field: no2, above: 100, for: 2h}\n", "n.yaml")
    engine = RuleEngine(rule)

    def reading(hour: int, value: float) -> Reading:
        return Reading(source_id="aq", time=T0 + timedelta(hours=hour), values={"no2": value},
                       units={"no2": "ug/m3"})

    values = [50, 120, 130, 90, 120, 140, 150]
    alerts = [a for h, v in enumerate(values) for a in engine.evaluate(reading(h, v))]
    # 120 at 1h, 130 at 2h, then a dip: no 2 h run; 120/140/150 from 4h reaches 2 h at 6h.
    assert [(a.state, a.time - T0) for a in alerts] == [("fired", timedelta(hours=6))]
    assert alerts[0].evidence.values["no2"] == 150


def test_line_crossing_rule_fires_on_the_right_direction_only() -> None:
    from detectors.events import LineCrossing

    [rule] = parse_rules("""
id: wrong-way
title: Walking the wrong way through the gate
condition: {type: line_crossing, line: gate, direction: left_to_right, classes: [person]}
resolve_after: 0s
""", "gate.yaml")
    engine = RuleEngine([rule])

    def crossing(seconds: float, direction: str) -> Detection:
        event = detection(seconds, 1)
        cross = LineCrossing(line="gate", track_id=7, label="person", direction=direction)
        return event.model_copy(update={"crossings": (cross,)})

    assert engine.evaluate(crossing(0, "right_to_left")) == []
    [fired] = engine.evaluate(crossing(1, "left_to_right"))
    assert fired.state == "fired" and fired.evidence.values["tracks"] == [7]
    [resolved] = engine.evaluate(detection(2, 1))
    assert resolved.state == "resolved"


def test_data_quality_rule_follows_the_issue() -> None:
    from ingest.events import DataQuality

    [rule] = parse_rules("""
id: camera-offline
title: Camera offline for a minute
sources: {kinds: [camera]}
condition: {type: data_quality, issues: [offline, frozen], for: 60s}
""", "offline.yaml")
    engine = RuleEngine([rule])

    def quality(seconds: float, active: bool, kind: str = "camera", issue: str = "offline") -> DataQuality:
        return DataQuality(source_id="cam-1", source_kind=kind, time=T0 + timedelta(seconds=seconds),
                           issue=issue, active=active)

    assert engine.evaluate(quality(0, True)) == []
    assert engine.evaluate(quality(30, True, kind="sensor")) == []  # another kind of source: not this rule
    assert engine.evaluate(quality(40, True, issue="dark")) == []  # not an issue this rule watches
    [fired] = engine.evaluate(quality(61, True))
    assert fired.state == "fired" and fired.evidence.values["issue"] == "offline"
    [resolved] = engine.evaluate(quality(90, False))
    assert resolved.state == "resolved"
    assert engine.evaluate(detection(100, 5)) == []  # detections do not reach a data-quality rule
