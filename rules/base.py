"""What every condition and the engine share: strict models, the per-event view, observations."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict

from ingest.events import Event
from rules.geo import LatLon


class StrictModel(BaseModel):
    """Rule-file models: unknown keys are errors (a typo never becomes a silent default)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What the settings know of a source that its events do not carry: tags and a fixed place."""

    kind: str = ""
    tags: frozenset[str] = frozenset()
    position: LatLon | None = None


@dataclass(frozen=True)
class Seen:
    """One event as the rules see it, worked out once per event (not once per rule)."""

    event: Event
    source_id: str
    kind: str
    now_us: int
    info: SourceInfo
    position: LatLon | None = None
    arrived_us: int | None = None  # when it entered the pipeline (processing time); None: unknown

    @cached_property
    def event_id(self) -> str:
        """The event id as text, made only when evidence needs it (most events decide
        nothing, and formatting a UUID costs more than most rules do)."""
        return str(self.event.event_id)

    @property
    def place(self) -> LatLon | None:
        """Where the event happened: the event's own position (a drone, a mobile sensor),
        else the source's registered one."""
        return self.position if self.position is not None else self.info.position


@dataclass(frozen=True, slots=True)
class Observation:
    """What a condition saw: whether it holds, and the values that decided it.
    A plain dataclass: one is made per rule per event, on the hot path."""

    holds: bool
    values: dict[str, Any] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()  # event ids beyond the current one (composites across sources)


EventType = type[Event]
EventTypes = tuple[type, ...]
"""Event classes a condition reads (named here: inside a condition class `type` is a field)."""

Memory = dict[str, Any]
"""A condition's own state for one rule and group key: plain JSON, so it can live in a
Faust table and survive a restart."""
