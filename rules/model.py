"""The rule language (see README, section Rules): one rule's identity, selection, condition,
grouping, timing, muting and routing.

Models forbid unknown keys, so a typo in a rule file is an error with a line number,
never a silently ignored option. Conditions live in `rules.conditions`, one small class
per type.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import Field, field_validator, model_validator

from rules.base import Observation, Seen, SourceInfo, StrictModel
from rules.conditions import (
    AbsenceCondition,
    CompositeCondition,
    Condition,
    DataQualityCondition,
    DetectionCondition,
    LineCrossingCondition,
    ThresholdCondition,
    walk,
)
from rules.duration import Duration, parse_duration
from rules.schedule import Schedule
from rules.selection import SourceSelector

__all__ = [
    "Channel", "DataQualityCondition", "DetectionCondition", "Duration", "LineCrossingCondition",
    "NotifyTarget", "Observation", "Realert", "Rule", "Schedule", "Seen", "Severity", "SourceInfo",
    "SourceSelector", "StrictModel", "Templates", "ThresholdCondition", "parse_duration",
]

Severity = Literal["info", "warning", "critical"]
Channel = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
"""A channel name. Which exist, and which the settings configure, is the notifier's and the
settings' to say: `rules check` and `publish` refuse the others (citywatch/rule_checks.py)."""
GroupBy = Literal["source", "zone", "track"]

_TEMPLATE_CHECKER = SandboxedEnvironment()


class NotifyTarget(StrictModel):
    recipient: str = Field(min_length=1, description="a recipient name from the settings")
    channels: list[Channel] = Field(min_length=1)


class Templates(StrictModel):
    """Jinja2 texts (sandboxed) that replace the default messages; they see `alert` and
    `values`. SMS is cut to one segment."""

    sms: str | None = Field(default=None, max_length=1000)
    email_subject: str | None = Field(default=None, max_length=500)
    email_body: str | None = Field(default=None, max_length=20_000)

    @field_validator("sms", "email_subject", "email_body")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                _TEMPLATE_CHECKER.parse(value)
            except TemplateSyntaxError as exc:
                raise ValueError(f"template line {exc.lineno}: {exc.message}") from exc
        return value


class Realert(StrictModel):
    """Notify again while an alert stays fired: after `every`, then `every`×`backoff`, ... up
    to `max` between reminders."""

    every: Duration = Field(gt=0)
    backoff: float = Field(default=1.0, ge=1, le=10)
    max: Duration | None = Field(default=None, gt=0)

    def delay_s(self, reminders_sent: int) -> float:
        delay = self.every * self.backoff ** reminders_sent
        return min(delay, self.max) if self.max is not None else delay


class Rule(StrictModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    severity: Severity = "warning"
    enabled: bool = True
    owner: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    sources: SourceSelector = Field(default_factory=SourceSelector)
    condition: Condition
    group_by: GroupBy = Field(
        default="source", description="one alert per source, per zone of a camera, or per tracked object")
    resolve_after: Duration = Field(
        default=0.0, description="the condition must be false this long before the alert resolves")
    cooldown: Duration = Field(default=0.0, description="after resolving, fire again for the key no sooner")
    realert: Realert | None = None
    schedule: Schedule | None = Field(default=None, description="active only in these time windows")
    inhibited_by: list[str] = Field(
        default_factory=list, description="rule ids: while one fires for the same key, this one is muted")
    route: str | None = Field(default=None, description="a notification policy name from the settings")
    notify: list[NotifyTarget] = Field(default_factory=list)
    templates: Templates | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Rule:
        if self.id in self.inhibited_by:
            raise ValueError("a rule cannot inhibit itself")
        if self.group_by != "source" and self.across_sources:
            raise ValueError("group_by zone/track does not apply to a composite across sources")
        if isinstance(self.condition, AbsenceCondition) and self.group_by != "source":
            raise ValueError("absence is per source; group_by must be 'source'")
        if isinstance(self.condition, CompositeCondition) and any(
                isinstance(part, AbsenceCondition) for part in walk(self.condition)):
            raise ValueError("absence is judged on arrival time, the other parts on event time: "
                             "write it as a rule of its own")
        return self

    @property
    def event_types(self) -> tuple[type, ...]:
        """The event types this rule's condition reads: the engine offers it nothing else."""
        return self.condition.reads()

    @cached_property
    def across_sources(self) -> bool:
        return isinstance(self.condition, CompositeCondition) and self.condition.across_sources

    @cached_property
    def for_us(self) -> int:
        return int(self.condition.for_ * 1_000_000)

    @cached_property
    def resolve_after_us(self) -> int:
        return int(self.resolve_after * 1_000_000)

    @cached_property
    def processing_time(self) -> bool:
        """Absence: the one decision about data that is missing, so made on arrival times and
        the worker's clock; every other rule decides on its key's event time."""
        return isinstance(self.condition, AbsenceCondition)
