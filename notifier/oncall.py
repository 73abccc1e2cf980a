"""Who is on call: rotations with a hand-off time in a time zone, and overrides.

Hand-offs happen at the local wall-clock time every day or week, so they stay at 09:00
across daylight-saving changes (a UTC-based rotation would drift by an hour twice a year).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from rules.schedule import check_zone

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


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

    def on_call(self, at: datetime) -> str | None:
        """The user on call at `at`; None before the rotation starts."""
        local = at.astimezone(ZoneInfo(self.timezone))
        shift_day = local.date() if local.time() >= self._handoff else local.date() - timedelta(days=1)
        days = (shift_day - self.start).days
        if days < 0:
            return None
        shifts = days if self.period == "daily" else days // 7
        return self.users[shifts % len(self.users)]


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
    rotation: Rotation
    overrides: list[Override] = Field(default_factory=list)

    def on_call(self, at: datetime) -> str | None:
        """Overrides win (the latest-starting one where several overlap)."""
        active = [o for o in self.overrides if o.start <= at < o.end]
        if active:
            return max(active, key=lambda o: o.start).user
        return self.rotation.on_call(at)
