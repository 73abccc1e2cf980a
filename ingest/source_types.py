"""What a kind of source declares about itself, once: a `SourceType`.

A source type names its list under `sources:` in the settings, the settings model of one
source of it (a `SourceEntry`: an id, a position, tags, and its own fields), the kinds
rules select its sources by (`sources: {kinds: [...]}`), and how one of its sources runs.
The registry (ingest/source_registry.py) lists the types; the settings' unique ids, the
source catalog that rules select by tag and place from, the rule schema's kinds, the
worker's and `citywatch ingest`'s start of every source, and the report of a source that
cannot start all follow from it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import Field

from ingest.events import SOURCE_ID_PATTERN, DataQuality, GeoPoint
from ingest.settings_base import Strict
from ingest.sink import EventSink


class GeoSettings(Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)

    def point(self) -> GeoPoint:
        return GeoPoint(lat=self.lat, lon=self.lon)


class SourceEntry(Strict):
    """What every configured source has: rules select sources by these."""

    id: str = Field(pattern=SOURCE_ID_PATTERN)
    position: GeoSettings | None = Field(default=None, description="where it is (a fixed source)")
    tags: list[str] = Field(default_factory=list)


E = TypeVar("E", bound=SourceEntry)


@dataclass(frozen=True)
class SourceContext:
    """What the composition root hands a running source."""

    sink: EventSink
    state_dir: Path | None
    """Where a source may keep what must survive a restart (a replay's checkpoint)."""
    report: Callable[[DataQuality], Awaitable[None]] | None = None
    """Where `cannot_start` goes (None: to the sink's telemetry)."""

    async def cannot_start(self, source_id: str, kind: str, reason: str) -> None:
        """Say that this source cannot run (the console shows it offline, with the reason)."""
        record = cannot_start(source_id, kind, reason)
        await (self.report or self.sink.telemetry)(record)


@dataclass(frozen=True)
class SourceType(Generic[E]):
    key: str
    """Its list under `sources:` in the settings."""
    entry: type[E]
    kinds: tuple[str, ...]
    """The kinds its sources have, for rule selectors; a source's own is `kind_of` it."""
    kind_of: Callable[[E], str] | None = None
    """Which of `kinds` one source is (None: the first)."""
    run: Callable[[E, SourceContext], Awaitable[None]] | None = None
    """Run one source until it ends or is cancelled, putting what it makes into the sink.
    None: its sources are not run one by one (they push to a receiver, or the composition
    root runs them itself, as cameras, whose control and metrics it also follows)."""

    def kind(self, entry: E) -> str:
        return self.kind_of(entry) if self.kind_of is not None else self.kinds[0]


def cannot_start(source_id: str, kind: str, reason: str) -> DataQuality:
    """The record that a configured source could not start (an unreadable file, say): the
    console shows the source offline with the reason, the other sources run on."""
    return DataQuality(source_id=source_id, source_kind=kind, time=datetime.now(UTC), issue="offline",
                       active=True, detail=f"cannot start: {reason}"[:2000])
