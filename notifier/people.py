"""People, teams, quiet hours and escalation policies: the notifier's configuration.

Pydantic models with unknown keys forbidden (a typo is an error). The composition root
embeds them in the settings file under `notify:` and `recipients:`.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from notifier.channel_registry import CHANNEL_ADDRESSES
from notifier.oncall import OnCallSchedule
from rules.schedule import check_zone

Severity = Literal["info", "warning", "critical"]
ChannelName = str
_CLOCK = r"^([01]\d|2[0-3]):([0-5]\d)$"
_TARGET = re.compile(r"^(oncall|person|team):[A-Za-z0-9_.-]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def known_channels(names: list[str]) -> list[str]:
    unknown = [name for name in names if name not in CHANNEL_ADDRESSES]
    if unknown:
        raise ValueError(f"unknown channel {unknown[0]!r} (channels: {', '.join(sorted(CHANNEL_ADDRESSES))})")
    return names


class QuietHours(_Strict):
    """Between `start` and `end` local time, only the listed severities get through."""

    start: str = Field(pattern=_CLOCK)
    end: str = Field(pattern=_CLOCK)
    timezone: str = "UTC"
    allow: list[Severity] = Field(default_factory=lambda: list[Severity](["critical"]))

    _zone_ok = field_validator("timezone")(check_zone)

    def mutes(self, severity: str, at: datetime) -> bool:
        if severity in self.allow:
            return False
        now = at.astimezone(ZoneInfo(self.timezone)).time()
        start, end = (time(int(t[:2]), int(t[3:])) for t in (self.start, self.end))
        quiet = start <= now < end if start <= end else (now >= start or now < end)
        return quiet


class Person(_Strict):
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$")
    webhook: str | None = Field(default=None, pattern=r"^https?://", description="JSON POST endpoint")
    quiet_hours: QuietHours | None = None
    timezone: str = Field(default="UTC", description="times in this person's messages are shown in this zone")

    _zone_ok = field_validator("timezone")(check_zone)

    def address(self, channel: str) -> str | None:
        field = CHANNEL_ADDRESSES.get(channel)
        return getattr(self, field) if field is not None else None


class Team(_Strict):
    members: list[str] = Field(min_length=1)


class EscalationStep(_Strict):
    notify: list[str] = Field(min_length=1, description="oncall:SCHEDULE, person:NAME or team:NAME")
    channels: list[ChannelName] = Field(min_length=1)
    _channels_known = field_validator("channels")(known_channels)
    wait: float = Field(default=300.0, ge=0,
                        description="seconds before the next step if nobody acknowledges")

    @field_validator("notify")
    @classmethod
    def _targets(cls, value: list[str]) -> list[str]:
        for target in value:
            if not _TARGET.match(target):
                raise ValueError(f"{target!r}: use oncall:SCHEDULE, person:NAME or team:NAME")
        return value


class EscalationPolicy(_Strict):
    steps: list[EscalationStep] = Field(min_length=1)
    repeat: int = Field(default=0, ge=0, le=10, description="run the steps again this many times")


class Directory(_Strict):
    """Everything needed to turn a target into people and addresses."""

    people: dict[str, Person] = Field(default_factory=dict)
    teams: dict[str, Team] = Field(default_factory=dict)
    schedules: dict[str, OnCallSchedule] = Field(default_factory=dict)
    policies: dict[str, EscalationPolicy] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references(self) -> Directory:
        problems = []
        for name, team in self.teams.items():
            problems += [f"team {name}: unknown person {m!r}" for m in team.members if m not in self.people]
        for name, schedule in self.schedules.items():
            problems += [f"schedule {name}: unknown person {u!r}"
                         for u in sorted(schedule.people()) if u not in self.people]
        for name, policy in self.policies.items():
            for step in policy.steps:
                for target in step.notify:
                    kind, _, ref = target.partition(":")
                    known: dict[str, set[str]] = {"oncall": set(self.schedules), "person": set(self.people),
                                                  "team": set(self.teams)}
                    if ref not in known[kind]:
                        problems.append(f"policy {name}: unknown {kind} {ref!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def resolve(self, target: str, at: datetime) -> list[str]:
        """The people a target means at `at` (nobody when a schedule has no one on call)."""
        kind, _, ref = target.partition(":")
        if kind == "person":
            return [ref]
        if kind == "team":
            return list(self.teams[ref].members)
        user = self.schedules[ref].on_call(at)
        return [user] if user else []
