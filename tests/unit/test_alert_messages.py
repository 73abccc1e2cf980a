"""What an alert's messages say: the value that resolved it, composite parts readably, and
times in the recipient's own time zone, named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notifier.templates import render, show
from rules.engine import RuleEngine
from tests.unit.rule_helpers import T0, reading, rule

PM = """
id: pm
title: PM2.5 high
condition: {type: threshold, field: pm25, above: 50}
resolve_after: 60s
"""


def test_the_resolve_reports_the_value_that_resolved_it_not_the_peak() -> None:
    engine = RuleEngine([rule(PM)])
    assert [a.state for a in engine.evaluate(reading(0, pm25=80))] == ["fired"]
    engine.evaluate(reading(30, pm25=95))  # the peak
    assert engine.evaluate(reading(60, pm25=12)) == []  # below, but not for 60 s yet
    engine.evaluate(reading(90, pm25=11))
    [resolved] = engine.evaluate(reading(130, pm25=14))  # time passed 120 s: resolved then, at 11
    assert resolved.state == "resolved"
    assert resolved.time == resolved.resolved_at == T0 + timedelta(seconds=120)
    assert resolved.evidence.values["pm25"] == 11.0
    assert "95" not in render("sms", resolved).text and "11" in render("sms", resolved).text


def test_composite_parts_read_as_text_not_as_a_python_list() -> None:
    text = show({"parts": [{"field": "pm25", "value": 80.0}, None, {"count": 3, "classes": ["person"]}]})
    assert text == "field=pm25 value=80.0 | - | count=3 classes=person"
    assert "[" not in text and "{" not in text and "None" not in text


def test_times_are_in_the_recipients_zone_with_the_zone_named() -> None:
    engine = RuleEngine([rule(PM)])
    [fired] = engine.evaluate(reading(0, pm25=80))  # 12:00 UTC on a winter Monday
    sms = render("sms", fired, timezone="Europe/Berlin").text
    assert "13:00 CET" in sms
    email = render("email", fired, timezone="America/New_York")
    assert "07:00:00 EST" in email.text and "07:00:00 EST" in (email.html or "")
    assert "12:00 UTC" in render("sms", fired).text
    assert fired.started_at == datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
