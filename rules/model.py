"""The rule language's schema (a first, small version; see docs/rules.md).

A rule selects sources, states a condition that must hold for a duration, and says
whom to notify. Models forbid unknown keys, so a typo in a rule file is an error
with a line number, never a silently ignored option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from detectors.events import Detection
from ingest.events import DataQuality, Event, QualityIssue, Reading, SourceKind

Severity = Literal["info", "warning", "critical"]
Channel = Literal["email", "sms"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any) -> float:
    """'90s', '5m', '2h', '1d' or a number of seconds, to seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '5m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 5m, 2h, 1d)")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema({"anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"},
    ], "description": "seconds, or a string like 90s, 5m, 2h, 1d"}),
]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SourceSelector(StrictModel):
    """Which sources a rule watches; empty lists mean 'any'."""

    ids: list[str] = Field(default_factory=list)
    kinds: list[SourceKind] = Field(default_factory=list)

    def matches(self, source_id: str, kind: str) -> bool:
        return (not self.ids or source_id in self.ids) and (not self.kinds or kind in self.kinds)


@dataclass(frozen=True, slots=True)
class Observation:
    """What a condition saw in one event: whether it holds, and the values that decided it.
    A plain dataclass: one is made per rule per event, on the hot path."""

    holds: bool
    values: dict[str, Any]


class DetectionCondition(StrictModel):
    """At least `min_count` objects of `classes` (each scored >= min_score) in a frame."""

    event_types: ClassVar[tuple[type, ...]] = (Detection,)
    type: Literal["detection"]
    classes: list[str] = Field(min_length=1)
    model: str | None = Field(
        default=None, description="only this model's detections (set it when several models report a class)")
    min_count: int = Field(default=1, ge=1)
    min_score: float = Field(default=0.25, ge=0, le=1)
    for_: Duration = Field(default=0.0, alias="for")

    @cached_property
    def _class_set(self) -> frozenset[str]:
        return frozenset(self.classes)

    def observe(self, event: Event) -> Observation | None:
        if not isinstance(event, Detection) or (self.model is not None and event.model != self.model):
            return None
        count = event.count(self._class_set, self.min_score)
        return Observation(
            holds=count >= self.min_count,
            values={"count": count, "classes": self.classes, "model": event.model},
        )


class ThresholdCondition(StrictModel):
    """A reading's field (or 'aqi') above and/or below a limit."""

    event_types: ClassVar[tuple[type, ...]] = (Reading,)
    type: Literal["threshold"]
    field: str = Field(min_length=1)
    above: float | None = None
    below: float | None = None
    for_: Duration = Field(default=0.0, alias="for")

    @model_validator(mode="after")
    def _one_limit(self) -> ThresholdCondition:
        if self.above is None and self.below is None:
            raise ValueError("give 'above' or 'below' (or both)")
        return self

    def observe(self, event: Event) -> Observation | None:
        if not isinstance(event, Reading):
            return None
        value = event.field(self.field)
        if value is None:
            return None  # this reading does not carry the field: no evidence either way
        holds = (self.above is not None and value > self.above) or (
            self.below is not None and value < self.below
        )
        unit = event.units.get(self.field, "")
        return Observation(holds=holds, values={self.field: value, "unit": unit})


class LineCrossingCondition(StrictModel):
    """Tracked objects crossed a counting line (optionally in one direction) in this frame."""

    event_types: ClassVar[tuple[type, ...]] = (Detection,)
    type: Literal["line_crossing"]
    line: str = Field(min_length=1)
    direction: Literal["left_to_right", "right_to_left", "any"] = "any"
    classes: list[str] = Field(default_factory=list, description="empty: any class")
    model: str | None = None
    min_count: int = Field(default=1, ge=1)
    for_: Duration = Field(default=0.0, alias="for")

    def observe(self, event: Event) -> Observation | None:
        if not isinstance(event, Detection) or (self.model is not None and event.model != self.model):
            return None
        crossed = [
            c for c in event.crossings
            if c.line == self.line and self.direction in ("any", c.direction)
            and (not self.classes or c.label in self.classes)
        ]
        return Observation(holds=len(crossed) >= self.min_count,
                           values={"crossings": len(crossed), "line": self.line,
                                   "tracks": [c.track_id for c in crossed]})


class DataQualityCondition(StrictModel):
    """A source reports a data-quality problem (frozen image, offline, stuck value ...)."""

    event_types: ClassVar[tuple[type, ...]] = (DataQuality,)
    type: Literal["data_quality"]
    issues: list[QualityIssue] = Field(min_length=1)
    for_: Duration = Field(default=0.0, alias="for")

    def observe(self, event: Event) -> Observation | None:
        if not isinstance(event, DataQuality) or event.issue not in self.issues:
            return None
        return Observation(holds=event.active, values={"issue": event.issue, "detail": event.detail})


Condition = Annotated[
    DetectionCondition | ThresholdCondition | LineCrossingCondition | DataQualityCondition,
    Field(discriminator="type"),
]


class NotifyTarget(StrictModel):
    recipient: str = Field(min_length=1, description="a recipient name from the settings")
    channels: list[Channel] = Field(min_length=1)


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
    resolve_after: Duration = Field(
        default=0.0, description="the condition must be false this long before the alert resolves"
    )
    notify: list[NotifyTarget] = Field(default_factory=list)

    @property
    def event_types(self) -> tuple[type, ...]:
        """The event types this rule's condition reads: the engine offers it nothing else."""
        return self.condition.event_types
