"""Small builders of events and rules for the rule tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from detectors.events import Box, Detection
from ingest.events import DataQuality, GeoPoint, Reading
from rules.loader import parse_rules
from rules.model import Rule

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rule(text: str) -> Rule:
    (parsed,) = parse_rules(text, "test.yaml")
    return parsed


def detection(seconds: float, persons: int = 1, source: str = "cam-1", label: str = "person",
              zones: tuple[str, ...] = (), track_ids: tuple[int, ...] = (), snapshot: str | None = None,
              ) -> Detection:
    boxes = tuple(
        Box(label=label, class_id=0, score=0.9, x1=0, y1=0, x2=1, y2=1, zones=zones,
            track_id=track_ids[i] if i < len(track_ids) else None)
        for i in range(persons))
    return Detection(source_id=source, time=at(seconds), frame_event_id=uuid4(), model="m",
                     model_version="1", frame_width=10, frame_height=10, boxes=boxes, inference_ms=1.0,
                     snapshot=snapshot)


def reading(seconds: float, source: str = "aq-1", position: tuple[float, float] | None = None,
            **values: float) -> Reading:
    return Reading(source_id=source, time=at(seconds), values=values, units=dict.fromkeys(values, "µg/m³"),
                   position=GeoPoint(lat=position[0], lon=position[1]) if position else None)


def quality(seconds: float, issue: Any = "frozen", active: bool = True, source: str = "cam-1") -> DataQuality:
    return DataQuality(source_id=source, time=at(seconds), source_kind="camera", issue=issue, active=active)
