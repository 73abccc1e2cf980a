"""Conditions decided by one event alone: detections, thresholds, line crossings, data quality."""

from __future__ import annotations

from functools import cached_property
from typing import ClassVar, Literal

from pydantic import Field

from detectors.events import Box, Detection
from ingest.events import DataQuality, QualityIssue, Reading
from rules.base import EventTypes, Memory, Observation, Seen
from rules.conditions.base import ConditionBase, DetectionNeed, LimitCondition
from rules.duration import Duration


class DetectionCondition(ConditionBase):
    """At least `min_count` objects of `classes` (each scored >= min_score) in a frame,
    optionally only those inside a zone, or that have stayed there `min_dwell`."""

    event_types: ClassVar[EventTypes] = (Detection,)
    type: Literal["detection"]
    classes: list[str] = Field(min_length=1)
    model: str | None = Field(
        default=None, description="only this model's detections (set it when several models report a class)")
    min_count: int = Field(default=1, ge=1)
    min_score: float = Field(default=0.25, ge=0, le=1)
    zone: str | None = Field(default=None, description="only objects inside this zone of the camera")
    min_dwell: Duration = Field(default=0.0, description="only objects that stayed in a zone this long")

    @cached_property
    def _class_set(self) -> frozenset[str]:
        return frozenset(self.classes)

    def detection_need(self) -> DetectionNeed:
        return DetectionNeed(self.model, self._class_set)

    def _counts(self, box: Box) -> bool:
        return (box.label in self._class_set and box.score >= self.min_score
                and (self.zone is None or self.zone in box.zones)
                and (not self.min_dwell or (box.dwell_s or 0.0) >= self.min_dwell))

    def observe(self, seen: Seen, memory: Memory) -> Observation | None:
        event = seen.event
        if not isinstance(event, Detection) or (self.model is not None and event.model != self.model):
            return None
        if self.zone is None and not self.min_dwell:
            count = event.count(self._class_set, self.min_score)
        else:
            count = sum(1 for box in event.boxes if self._counts(box))
        values: dict[str, object] = {"count": count, "classes": self.classes, "model": event.model}
        if self.zone is not None:
            values["zone"] = self.zone
        return Observation(holds=count >= self.min_count, values=values)


class ThresholdCondition(LimitCondition):
    """A reading's field (or 'aqi') above and/or below a limit."""

    event_types: ClassVar[EventTypes] = (Reading,)
    type: Literal["threshold"]
    field: str = Field(min_length=1)

    def observe(self, seen: Seen, memory: Memory) -> Observation | None:
        event = seen.event
        if not isinstance(event, Reading):
            return None
        value = event.field(self.field)
        if value is None:
            return None  # this reading does not carry the field: no evidence either way
        holds = self.beyond(value)
        return Observation(holds=holds, values={self.field: value, "unit": event.units.get(self.field, "")})


class LineCrossingCondition(ConditionBase):
    """Tracked objects crossed a counting line (optionally in one direction) in this frame."""

    event_types: ClassVar[EventTypes] = (Detection,)
    type: Literal["line_crossing"]
    line: str = Field(min_length=1)
    direction: Literal["left_to_right", "right_to_left", "any"] = "any"
    classes: list[str] = Field(default_factory=list, description="empty: any class")
    model: str | None = None
    min_count: int = Field(default=1, ge=1)

    def detection_need(self) -> DetectionNeed:
        return DetectionNeed(self.model, frozenset(self.classes))

    def observe(self, seen: Seen, memory: Memory) -> Observation | None:
        event = seen.event
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


class DataQualityCondition(ConditionBase):
    """A source reports a data-quality problem (frozen image, offline, stuck value ...)."""

    event_types: ClassVar[EventTypes] = (DataQuality,)
    type: Literal["data_quality"]
    issues: list[QualityIssue] = Field(min_length=1)

    def observe(self, seen: Seen, memory: Memory) -> Observation | None:
        event = seen.event
        if not isinstance(event, DataQuality) or event.issue not in self.issues:
            return None
        return Observation(holds=event.active, values={"issue": event.issue, "detail": event.detail})
