"""On-call rotations (DST included), quiet hours, escalation steps, acknowledgements."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from notifier.escalation import Delivery, Escalator
from notifier.oncall import OnCallSchedule, Override, Rotation
from notifier.people import Directory, EscalationPolicy, Person, QuietHours
from rules.events import Alert

LONDON = ZoneInfo("Europe/London")


def local(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


def test_weekly_rotation_hands_off_at_local_time_across_dst() -> None:
    rotation = Rotation(users=["ana", "bo", "cy"], start=date(2026, 3, 23), handoff="09:00",
                        period="weekly", timezone="Europe/London")
    assert rotation.on_call(local(2026, 3, 23, 8, 59)) is None  # before the first shift
    assert rotation.on_call(local(2026, 3, 23, 9, 0)) == "ana"
    # clocks go forward on 29 March: the hand-off is still 09:00 London time (08:00 UTC)
    assert rotation.on_call(local(2026, 3, 30, 8, 59)) == "ana"
    assert rotation.on_call(local(2026, 3, 30, 9, 0)) == "bo"
    assert rotation.on_call(datetime(2026, 3, 30, 8, 0, tzinfo=UTC)) == "bo"
    assert rotation.on_call(local(2026, 4, 6, 9, 0)) == "cy"
    assert rotation.on_call(local(2026, 4, 13, 9, 0)) == "ana"
    # and back in October: 09:00 London is 09:00 UTC again
    daily = Rotation(users=["ana", "bo"], start=date(2026, 10, 24), handoff="09:00", period="daily",
                     timezone="Europe/London")
    assert daily.on_call(datetime(2026, 10, 25, 8, 30, tzinfo=UTC)) == "ana"  # 08:30 GMT
    assert daily.on_call(datetime(2026, 10, 25, 9, 0, tzinfo=UTC)) == "bo"


def test_overrides_win_over_the_rotation() -> None:
    schedule = OnCallSchedule(
        rotation=Rotation(users=["ana", "bo"], start=date(2026, 1, 5), timezone="UTC"),
        overrides=[Override(user="cy", start=datetime(2026, 1, 6, tzinfo=UTC),
                            end=datetime(2026, 1, 7, tzinfo=UTC), reason="ana at the dentist")])
    assert schedule.on_call(datetime(2026, 1, 5, 12, tzinfo=UTC)) == "ana"
    assert schedule.on_call(datetime(2026, 1, 6, 12, tzinfo=UTC)) == "cy"
    assert schedule.on_call(datetime(2026, 1, 7, 12, tzinfo=UTC)) == "ana"


def test_quiet_hours_let_only_the_listed_severities_through() -> None:
    quiet = QuietHours(start="22:00", end="07:00", timezone="Europe/London")
    night, day = local(2026, 6, 1, 23, 30), local(2026, 6, 1, 12, 0)
    assert quiet.mutes("warning", night) and not quiet.mutes("critical", night)
    assert not quiet.mutes("warning", day)


DIRECTORY = Directory(
    people={name: Person(email=f"{name}@example.org", phone="+447700900123")
            for name in ("ana", "bo", "lead")},
    schedules={"ops": OnCallSchedule(rotation=Rotation(users=["ana", "bo"], start=date(2026, 1, 5)))},
    teams={"leads": {"members": ["lead"]}},
    policies={"night": EscalationPolicy(steps=[
        {"notify": ["oncall:ops"], "channels": ["sms"], "wait": 300},
        {"notify": ["team:leads", "oncall:ops"], "channels": ["sms", "email"], "wait": 600},
    ], repeat=1)},
)


def routed_alert(route: str = "night") -> Alert:
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    return Alert(source_id="cam-1", time=now, alert_id=uuid4(), rule_id="fire", title="Fire",
                 severity="critical", state="fired", group_key="cam-1", started_at=now, route=route)


def test_unknown_people_in_teams_schedules_and_policies_are_errors() -> None:
    with pytest.raises(ValidationError, match="unknown person 'zoe'"):
        Directory(people={}, teams={"t": {"members": ["zoe"]}})
    with pytest.raises(ValidationError, match="unknown oncall 'nope'"):
        Directory(policies={"p": {"steps": [{"notify": ["oncall:nope"], "channels": ["sms"]}]}})


def test_escalation_reaches_level_two_when_nobody_acknowledges_and_repeats() -> None:
    escalator = Escalator(DIRECTORY)
    alert = routed_alert()
    start = datetime(2026, 1, 5, 12, tzinfo=UTC)
    assert escalator.start(alert, start) == [Delivery("ana", "sms", 0)]
    assert escalator.start(alert, start) == []  # a redelivered alert does not restart it
    assert escalator.due(start + timedelta(seconds=299)) == []
    [second] = escalator.due(start + timedelta(seconds=300))
    assert sorted(second.deliveries, key=str) == sorted([
        Delivery("lead", "sms", 1), Delivery("lead", "email", 1),
        Delivery("ana", "sms", 1), Delivery("ana", "email", 1)], key=str)
    [third] = escalator.due(start + timedelta(seconds=900))  # repeat: step 0 again
    assert third.deliveries == [Delivery("ana", "sms", 2)]
    [fourth] = escalator.due(start + timedelta(seconds=1200))
    assert fourth.deliveries[0].step == 3
    assert escalator.due(start + timedelta(hours=5)) == []  # two rounds, then it stops
    resolved = escalator.resolve(alert.model_copy(update={"state": "resolved"}))
    assert sorted((d.recipient, d.channel) for d in resolved) == [
        ("ana", "email"), ("ana", "sms"), ("lead", "email"), ("lead", "sms")]


def test_acknowledgement_stops_the_escalation() -> None:
    escalator = Escalator(DIRECTORY)
    alert = routed_alert()
    start = datetime(2026, 1, 5, 12, tzinfo=UTC)
    escalator.start(alert, start)
    assert escalator.acknowledge(str(alert.alert_id), "ana")
    assert not escalator.acknowledge(str(alert.alert_id), "bo")  # already taken
    assert escalator.due(start + timedelta(hours=1)) == []
    assert escalator.start(routed_alert("no-such-policy"), start) == []


def test_each_alert_message_chooses_its_deliveries() -> None:
    """The choice the notify agent used to make: start, remind, resolve, or leave it to notify:."""
    escalator = Escalator(DIRECTORY)
    alert = routed_alert()
    start = datetime(2026, 1, 5, 12, tzinfo=UTC)
    assert escalator.on_alert(alert, start) == [Delivery("ana", "sms", 0)]
    assert escalator.on_alert(alert.model_copy(update={"reminder": 1}), start) == [Delivery("ana", "sms", 0)]
    assert escalator.on_alert(alert.model_copy(update={"state": "resolved"}), start) == [
        Delivery("ana", "sms", 0)]
    assert escalator.due(start + timedelta(hours=1)) == []  # the resolve ended it
    assert escalator.on_alert(routed_alert().model_copy(update={"muted": "silenced"}), start) is None
    assert escalator.on_alert(routed_alert().model_copy(update={"route": None}), start) is None


def test_bundling_sends_the_first_at_once_and_the_rest_as_one_message() -> None:
    from notifier.bundling import Bundler

    shared: dict[str, dict[str, object]] = {}
    bundler, escalator = Bundler(60, shared), Escalator(DIRECTORY, shared)  # may share one table
    start = datetime(2026, 1, 5, 12, tzinfo=UTC)
    alerts = [routed_alert(route="").model_copy(update={"route": None, "group_key": f"cam-{i}",
                                                        "alert_id": uuid4()}) for i in range(4)]
    assert [bundler.offer(a, start + timedelta(seconds=i)) for i, a in enumerate(alerts)] == [
        True, False, False, False]
    assert bundler.due(start + timedelta(seconds=59)) == []
    assert escalator.due(start + timedelta(hours=1)) == []
    [bundled] = bundler.due(start + timedelta(seconds=60))
    assert bundled.title == "3 more: Fire" and bundled.group_key == "cam-1, cam-2, cam-3"
    assert bundler.due(start + timedelta(seconds=61)) == []  # the window closed; the next alert opens one
    assert bundler.offer(alerts[0], start + timedelta(seconds=70))
