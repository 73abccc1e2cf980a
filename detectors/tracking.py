"""Track ids across frames (per source and model), and what tracks do: zones, dwell, lines, speed.

Matching is IoU-based and optimal (Hungarian, via `lap`) between the live tracks and the
new boxes of the same label; a track unseen for `max_age_s` of event time ends. Positions
use the box's bottom-centre: where the object touches the ground, which is what zones
and counting lines drawn on the ground mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import lap
import numpy as np

from detectors.events import Box, LineCrossing
from detectors.scene import Point, SceneSpec, in_polygon, segments_cross, side_of

Direction = Literal["left_to_right", "right_to_left"]


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    iy = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = ix * iy
    union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter
    return inter / union if union > 0 else 0.0


def foot(box: Box) -> Point:
    return ((box.x1 + box.x2) / 2, box.y2)


@dataclass
class _Track:
    id: int
    label: str
    box: Box
    last_seen: datetime
    zone_since: dict[str, datetime] = field(default_factory=dict)


class Tracker:
    def __init__(self, scene: SceneSpec | None = None, min_iou: float = 0.25, max_age_s: float = 3.0) -> None:
        self.scene = scene or SceneSpec()
        self.min_iou = min_iou
        self.max_age_s = max_age_s
        self._tracks: list[_Track] = []
        self._next_id = 1

    def update(self, boxes: list[Box], time: datetime) -> tuple[list[Box], list[LineCrossing]]:
        self._tracks = [t for t in self._tracks if (time - t.last_seen).total_seconds() <= self.max_age_s]
        matches = self._match(boxes)
        updated: list[Box] = []
        crossings: list[LineCrossing] = []
        for index, box in enumerate(boxes):
            track = matches.get(index)
            if track is None:
                track = _Track(self._next_id, box.label, box, time)
                self._next_id += 1
                self._tracks.append(track)
                previous = None
            else:
                previous = track
            updated.append(self._describe(track, previous, box, time, crossings))
        return updated, crossings

    def _match(self, boxes: list[Box]) -> dict[int, _Track]:
        if not boxes or not self._tracks:
            return {}
        cost = np.ones((len(boxes), len(self._tracks)))
        for i, box in enumerate(boxes):
            for j, track in enumerate(self._tracks):
                if track.label == box.label:
                    cost[i, j] = 1 - iou(box, track.box)
        _, assigned, _ = lap.lapjv(cost, extend_cost=True, cost_limit=1 - self.min_iou)
        return {i: self._tracks[j] for i, j in enumerate(assigned) if j >= 0}

    def _describe(self, track: _Track, previous: _Track | None, box: Box, time: datetime,
                  crossings: list[LineCrossing]) -> Box:
        scene = self.scene
        here = foot(box)
        speed_px = None
        if previous is not None:
            before = foot(previous.box)
            dt = (time - previous.last_seen).total_seconds()
            if dt > 0:
                speed_px = math.dist(before, here) / dt
            for name, line in scene.lines.items():
                if segments_cross(line, before, here):
                    direction: Direction = "left_to_right" if side_of(line, before) < 0 else "right_to_left"
                    crossings.append(LineCrossing(line=name, track_id=track.id, label=box.label,
                                                  direction=direction))
        zones = tuple(name for name, polygon in scene.zones.items() if in_polygon(here, polygon))
        track.zone_since = {z: track.zone_since.get(z, time) for z in zones}
        dwell = max(((time - since).total_seconds() for since in track.zone_since.values()), default=None)
        track.box, track.last_seen = box, time
        return box.model_copy(update={
            "track_id": track.id, "zones": zones, "dwell_s": round(dwell, 3) if dwell is not None else None,
            "speed_px_s": round(speed_px, 2) if speed_px is not None else None,
            "speed_m_s": (round(speed_px * scene.m_per_px, 3)
                          if speed_px is not None and scene.m_per_px else None),
        })
