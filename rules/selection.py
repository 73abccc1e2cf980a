"""Which sources a rule watches: by id, kind, tag, or place (near a point, inside a polygon)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from ingest.settings_base import Registered
from ingest.source_registry import source_kinds
from rules import geo
from rules.base import Seen, SourceInfo, StrictModel

NO_INFO = SourceInfo()


KnownKind = Annotated[str, Registered("source kind", "kinds", source_kinds)]
"""A kind some registered source type has."""


class Near(StrictModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    within_m: float = Field(gt=0, description="metres from the point")


class SourceSelector(StrictModel):
    """All given criteria must hold; an empty list means 'any'. Geo criteria use the event's
    own position (drones, mobile sensors) or the position registered in the settings; a
    source with no known position never matches a geo criterion."""

    ids: list[str] = Field(default_factory=list)
    kinds: list[KnownKind] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list, description="sources with at least one of these tags")
    near: Near | None = None
    inside: list[tuple[float, float]] | None = Field(
        default=None, description="a polygon of (lat, lon) points")

    @field_validator("inside")
    @classmethod
    def _polygon(cls, value: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        if value is not None and len(value) < 3:
            raise ValueError("a polygon needs at least 3 points")
        return value

    @property
    def is_empty(self) -> bool:
        return not (self.ids or self.kinds or self.tags or self.near or self.inside)

    def matches(self, seen: Seen) -> bool:
        return self.matches_source(seen.source_id, seen.kind, seen.info, seen.place)

    def matches_source(self, source_id: str, kind: str, info: SourceInfo = NO_INFO,
                       place: geo.LatLon | None = None) -> bool:
        if self.ids and source_id not in self.ids:
            return False
        if self.kinds and kind not in self.kinds:
            return False
        if self.tags and info.tags.isdisjoint(self.tags):
            return False
        if self.near is None and self.inside is None:
            return True
        place = place if place is not None else info.position
        if place is None:
            return False
        near = self.near
        if near is not None and geo.distance_m(place, (near.lat, near.lon)) > near.within_m:
            return False
        return self.inside is None or geo.inside(place, self.inside)
