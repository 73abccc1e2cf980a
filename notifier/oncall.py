"""Who is on call: rotations with a hand-off time in a time zone, shifts from an iCalendar
file, and overrides.

Hand-offs happen at the local wall-clock time every day or week, so they stay at 09:00
across daylight-saving changes (a UTC-based rotation would drift by an hour twice a year).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import recurring_ical_events
from icalendar import Calendar
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from rules.schedule import check_zone

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_LAST_GOOD: dict[Path, Calendar] = {}
log = logging.getLogger(__name__)
_DEFAULT_SUMMARY = r"(?i)^(?:on[ -]?call\s*[:-]?\s*)?(?P<person>[A-Za-z0-9_.@-]+)$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rotation(_Strict):
    users: list[str] = Field(min_length=1, description="people, in turn")
    start: date = Field(description="the first user's first day (local date)")
    handoff: str = Field(default="09:00", pattern=_CLOCK.pattern, description="local time of each hand-off")
    period: Literal["daily", "weekly"] = "weekly"
    timezone: str = "UTC"

    _zone_ok = field_validator("timezone")(check_zone)

    @cached_property
    def _handoff(self) -> time:
        hours, minutes = self.handoff.split(":")
        return time(int(hours), int(minutes))

    def next_handoff(self, now: datetime) -> datetime:
        """The first hand-off after `now` (at the local wall-clock time, DST included)."""
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        day = max(local.date(), self.start)
        while True:
            moment = datetime.combine(day, self._handoff, tzinfo=zone)
            due = self.period == "daily" or (day - self.start).days % 7 == 0
            if due and moment > now:
                return moment.astimezone(UTC)
            day += timedelta(days=1)

    def on_call(self, at: datetime) -> str | None:
        """The user on call at `at`; None before the rotation starts."""
        local = at.astimezone(ZoneInfo(self.timezone))
        shift_day = local.date() if local.time() >= self._handoff else local.date() - timedelta(days=1)
        days = (shift_day - self.start).days
        if days < 0:
            return None
        shifts = days if self.period == "daily" else days // 7
        return self.users[shifts % len(self.users)]


class CalendarShifts(_Strict):
    """Shifts from an iCalendar file (RFC 5545) exported from the team's calendar: every
    event is a shift, and its SUMMARY names who is on call ("ana", "On call: ana").
    Recurring events, exceptions and moved occurrences are expanded by
    recurring-ical-events; the file is read again when it changes."""

    path: Path
    pattern: str = Field(default=_DEFAULT_SUMMARY, description="regex with a group 'person' over SUMMARY")

    @field_validator("pattern")
    @classmethod
    def _has_person(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        if "person" not in compiled.groupindex:
            raise ValueError("the pattern needs a named group 'person', e.g. (?P<person>\\w+)")
        return value

    @model_validator(mode="after")
    def _readable(self) -> CalendarShifts:
        """A missing file, broken iCalendar or a summary naming nobody is an error now, not at
        3 a.m. (a relative path is checked once the settings have made it absolute)."""
        self.people(fall_back=False)
        return self

    def _calendar(self, fall_back: bool = True) -> Calendar:
        """The file as it is now; if it went missing or broken since a good read, that read
        (logged: the schedule must not go blank because someone saved a bad export)."""
        try:
            calendar = _load_calendar(self.path, self.path.stat().st_mtime_ns)
        except (OSError, ValueError) as exc:
            problem = exc.strerror if isinstance(exc, OSError) else str(exc)
            last = _LAST_GOOD.get(self.path) if fall_back else None
            if last is None:
                raise ValueError(f"cannot read the on-call calendar {self.path}: {problem}") from exc
            log.error("on-call calendar %s unreadable (%s); using its last good version", self.path, problem)
            return last
        _LAST_GOOD[self.path] = calendar
        return calendar

    def _person(self, event: Any) -> str:
        summary = str(event.get("SUMMARY", "")).strip()
        match = re.match(self.pattern, summary)
        if match is None or not match.group("person"):
            raise ValueError(f"{self.path}: the shift {summary!r} names nobody (pattern {self.pattern!r})")
        return match.group("person")

    def people(self, fall_back: bool = True) -> set[str]:
        """Everyone the file names; nobody yet while the path is still relative (the settings
        check again once they have made it absolute against their own folder)."""
        if not self.path.is_absolute():
            return set()
        return {self._person(event) for event in self._calendar(fall_back).walk("VEVENT")}

    def on_call(self, at: datetime) -> str | None:
        """Who the shift at `at` names; the latest-starting shift where several overlap."""
        shifts = recurring_ical_events.of(self._calendar()).between(at, at + timedelta(seconds=1))
        for shift in sorted(shifts, key=lambda e: _aware(e.get("DTSTART").dt), reverse=True):
            try:
                return self._person(shift)
            except ValueError as exc:  # edited since it was checked: skip it, loudly
                log.error("%s", exc)
        return None

    def boundaries(self, start: datetime, end: datetime) -> list[datetime]:
        """Shift starts and ends strictly between `start` and `end`."""
        moments = []
        for event in recurring_ical_events.of(self._calendar()).between(start, end):
            for key in ("DTSTART", "DTEND"):
                value = event.get(key)
                if value is not None and start < _aware(value.dt) < end:
                    moments.append(_aware(value.dt))
        return moments


def _aware(value: date | datetime) -> datetime:
    """An all-day shift starts at midnight UTC; a floating time is taken as UTC."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time(0), tzinfo=UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@lru_cache(maxsize=32)
def _load_calendar(path: Path, mtime_ns: int) -> Calendar:
    """Parsed once per version of the file (the modification time is part of the key)."""
    try:
        return Calendar.from_ical(path.read_bytes())
    except ValueError as exc:
        raise ValueError(f"{path} is not an iCalendar file: {exc}") from exc


class Override(_Strict):
    user: str = Field(min_length=1)
    start: AwareDatetime
    end: AwareDatetime
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if self.end <= self.start:
            raise ValueError("an override must end after it starts")
        return self


class OnCallSchedule(_Strict):
    """Overrides win, then the calendar's shifts, then the rotation; at least one of the
    calendar and the rotation."""

    rotation: Rotation | None = None
    calendar: CalendarShifts | None = None
    overrides: list[Override] = Field(default_factory=list)

    @model_validator(mode="after")
    def _someone(self) -> OnCallSchedule:
        if self.rotation is None and self.calendar is None:
            raise ValueError("an on-call schedule needs a rotation, a calendar, or both")
        return self

    def on_call(self, at: datetime) -> str | None:
        """Overrides win (the latest-starting one where several overlap)."""
        active = [o for o in self.overrides if o.start <= at < o.end]
        if active:
            return max(active, key=lambda o: o.start).user
        if self.calendar is not None:
            person = self.calendar.on_call(at)
            if person is not None:
                return person
        return self.rotation.on_call(at) if self.rotation is not None else None

    def people(self) -> set[str]:
        """Everyone the schedule can name (checked against the directory)."""
        found = {o.user for o in self.overrides}
        if self.rotation is not None:
            found.update(self.rotation.users)
        if self.calendar is not None:
            found.update(self.calendar.people())
        return found

    def next_change(self, now: datetime) -> datetime:
        """When who is on call may change next: a hand-off, a shift's or an override's
        start or end (at most a week ahead)."""
        ahead = now + timedelta(days=7)
        moments = [moment for o in self.overrides for moment in (o.start, o.end) if now < moment < ahead]
        if self.rotation is not None:
            moments.append(self.rotation.next_handoff(now))
        if self.calendar is not None:
            moments += self.calendar.boundaries(now, ahead)
        return min(moments, default=ahead)
