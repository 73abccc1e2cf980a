"""The Detection event: what one model found in one frame."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from ingest.events import Event, GeoPoint


class Box(BaseModel):
    """One detected object, in pixel coordinates of the frame as it was sent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    class_id: int = Field(ge=0)
    score: float = Field(ge=0, le=1)
    x1: float
    y1: float
    x2: float
    y2: float
    track_id: int | None = None
    zones: tuple[str, ...] = Field(default=(), description="zones the box's bottom-centre is in")
    dwell_s: float | None = Field(default=None, ge=0, description="longest time in any current zone")
    speed_px_s: float | None = Field(default=None, ge=0)
    speed_m_s: float | None = Field(default=None, ge=0, description="where the source has a ground scale")


class LineCrossing(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    line: str
    track_id: int
    label: str
    direction: Literal["left_to_right", "right_to_left"]  # seen from the line's first point


class Detection(Event):
    frame_event_id: UUID
    kind: Literal["camera", "drone"] = "camera"
    model: str
    model_version: str
    frame_width: int = Field(gt=0)
    frame_height: int = Field(gt=0)
    boxes: tuple[Box, ...] = ()
    crossings: tuple[LineCrossing, ...] = ()
    inference_ms: float = Field(ge=0)
    snapshot: str | None = Field(default=None, description=(
        "reference to a JPEG with the boxes drawn: snapshot:<event id> (kept in TimescaleDB) or a file path"))
    position: GeoPoint | None = Field(default=None, description="where the frame was taken (a drone's)")

    def count(self, labels: frozenset[str], min_score: float = 0.0) -> int:
        return sum(1 for box in self.boxes if box.label in labels and box.score >= min_score)
