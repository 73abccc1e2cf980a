"""On-call shifts from an iCalendar file: recurring shifts across the spring DST change, an
excluded occurrence covered by a swap, precedence over the rotation and under overrides,
the people named checked against the directory, and edits to the file."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from notifier.oncall import CalendarShifts, OnCallSchedule, Override, Rotation
from notifier.people import Directory, Person

# Two alternating weekly shifts handed over at 09:00 London time (GMT, then BST from
# 29 March 2026); ana's 6 April shift is excluded and cy covers it.
ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//CityWatch tests//EN
BEGIN:VEVENT
UID:ana@test
DTSTART;TZID=Europe/London:20260323T090000
DTEND;TZID=Europe/London:20260330T090000
RRULE:FREQ=WEEKLY;INTERVAL=2
EXDATE;TZID=Europe/London:20260406T090000
SUMMARY:On call: ana
END:VEVENT
BEGIN:VEVENT
UID:bo@test
DTSTART;TZID=Europe/London:20260330T090000
DTEND;TZID=Europe/London:20260406T090000
RRULE:FREQ=WEEKLY;INTERVAL=2
SUMMARY:bo
END:VEVENT
BEGIN:VEVENT
UID:swap@test
DTSTART:20260406T080000Z
DTEND:20260413T080000Z
SUMMARY:On-call - cy
END:VEVENT
END:VCALENDAR
"""


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def calendar(tmp_path: Path) -> CalendarShifts:
    path = tmp_path / "oncall.ics"
    path.write_text(ICS.replace("\n", "\r\n"))
    return CalendarShifts(path=path)


def test_recurring_shifts_hand_over_at_local_time_across_dst(calendar: CalendarShifts) -> None:
    assert calendar.people() == {"ana", "bo", "cy"}
    assert calendar.on_call(utc(2026, 3, 23, 8, 59)) is None  # before the first shift
    assert calendar.on_call(utc(2026, 3, 23, 9, 0)) == "ana"  # 09:00 GMT
    assert calendar.on_call(utc(2026, 3, 30, 7, 59)) == "ana"
    assert calendar.on_call(utc(2026, 3, 30, 8, 0)) == "bo"  # 09:00 BST
    assert calendar.on_call(utc(2026, 4, 6, 8, 0)) == "cy"  # ana's excluded week, swapped
    assert calendar.on_call(utc(2026, 4, 13, 8, 0)) == "bo"
    assert calendar.on_call(utc(2026, 4, 20, 8, 0)) == "ana"
    ends_and_starts = calendar.boundaries(utc(2026, 3, 25), utc(2026, 4, 1))
    assert ends_and_starts == [utc(2026, 3, 30, 8)] * 2  # ana's shift ends as bo's starts


def test_overrides_then_calendar_then_rotation(calendar: CalendarShifts) -> None:
    schedule = OnCallSchedule(
        calendar=calendar,
        rotation=Rotation(users=["dee"], start=date(2026, 1, 1), timezone="Europe/London"),
        overrides=[Override(user="lead", start=utc(2026, 3, 24), end=utc(2026, 3, 25))])
    assert schedule.on_call(utc(2026, 3, 20)) == "dee"  # no shift yet: the rotation
    assert schedule.on_call(utc(2026, 3, 23, 12)) == "ana"
    assert schedule.on_call(utc(2026, 3, 24, 12)) == "lead"
    assert schedule.next_change(utc(2026, 3, 24, 12)) == utc(2026, 3, 25)  # the override ends
    assert schedule.next_change(utc(2026, 3, 26)) == utc(2026, 3, 26, 9)  # the rotation's weekly hand-off
    assert schedule.people() == {"ana", "bo", "cy", "dee", "lead"}
    with pytest.raises(ValidationError, match="needs a rotation, a calendar, or both"):
        OnCallSchedule()


def test_every_person_a_calendar_names_must_be_known(calendar: CalendarShifts) -> None:
    people = {name: Person(email=f"{name}@city.example") for name in ("ana", "bo")}
    with pytest.raises(ValidationError, match="schedule ops: unknown person 'cy'"):
        Directory(people=people, schedules={"ops": OnCallSchedule(calendar=calendar)})


def test_a_calendar_that_names_nobody_or_cannot_be_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "team.ics"
    path.write_text(ICS.replace("SUMMARY:bo", "SUMMARY:Team offsite (everyone)"))
    with pytest.raises(ValidationError, match="names nobody"):
        CalendarShifts(path=path)
    with pytest.raises(ValidationError, match="cannot read the on-call calendar"):
        CalendarShifts(path=tmp_path / "missing.ics")
    path.write_text("not a calendar")
    with pytest.raises(ValidationError, match="cannot read the on-call calendar"):
        CalendarShifts(path=path)
    with pytest.raises(ValidationError, match="named group 'person'"):
        CalendarShifts(path=path, pattern=r"^(\w+)$")


def test_an_edited_file_is_read_again_and_a_broken_edit_keeps_the_last_good(calendar: CalendarShifts) -> None:
    assert calendar.on_call(utc(2026, 3, 31)) == "bo"
    stat = calendar.path.stat()
    calendar.path.write_text(ICS.replace("SUMMARY:bo", "SUMMARY:ed"))
    os.utime(calendar.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert calendar.on_call(utc(2026, 3, 31)) == "ed"
    calendar.path.write_text("BEGIN:VCALENDAR\r\nBROKEN")
    os.utime(calendar.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    assert calendar.on_call(utc(2026, 3, 31)) == "ed"  # the last good version, and an error logged


def test_the_settings_read_a_calendar_beside_them_and_the_cli_answers_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from citywatch.cli import main

    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    (config_dir / "oncall.ics").write_text(ICS)
    (config_dir / "citywatch.yaml").write_text("""
recipients:
  ana: {email: ana@city.example}
  bo: {email: bo@city.example}
  cy: {email: cy@city.example}
notify:
  schedules:
    ops: {calendar: {path: oncall.ics}}
""")
    monkeypatch.chdir(tmp_path)  # the path is relative to the settings file, not to here
    answer = CliRunner().invoke(main, ["--config", str(config_dir / "citywatch.yaml"), "notify", "oncall",
                                       "--at", "2026-04-07T12:00:00Z"])
    assert answer.exit_code == 0, answer.output
    assert answer.output.strip() == "ops: cy"
