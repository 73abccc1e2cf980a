"""When a rule is active: weekly time windows in a named time zone (e.g. school hours)."""

from __future__ import annotations

import re
from datetime import datetime, time
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from rules.base import StrictModel

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _clock(value: str) -> time:
    match = _CLOCK.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a time of day (use HH:MM, 24-hour)")
    return time(int(match.group(1)), int(match.group(2)))


def check_zone(value: str) -> str:
    """A pydantic validator for IANA time-zone names (rule schedules, on-call rotations)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Paris)") from exc
    return value


class TimeWindow(StrictModel):
    """From `start` to `end` local time on the given days; an `end` before `start` runs past
    midnight into the next day."""

    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))
    start: str = Field(default="00:00", pattern=_CLOCK.pattern)
    end: str = Field(default="24:00", pattern=r"^(([01]\d|2[0-3]):([0-5]\d)|24:00)$")

    def contains(self, local: datetime) -> bool:
        start = _clock(self.start)
        now = local.time()
        day = WEEKDAYS[local.weekday()]
        previous_day = WEEKDAYS[(local.weekday() - 1) % 7]
        if self.end == "24:00":
            return day in self.days and now >= start
        end = _clock(self.end)
        if start <= end:
            return day in self.days and start <= now < end
        return (day in self.days and now >= start) or (previous_day in self.days and now < end)


class Schedule(StrictModel):
    timezone: str = "UTC"
    windows: list[TimeWindow] = Field(min_length=1)

    _zone_ok = field_validator("timezone")(check_zone)

    @cached_property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def active(self, moment: datetime) -> bool:
        local = moment.astimezone(self._zone)
        return any(window.contains(local) for window in self.windows)
