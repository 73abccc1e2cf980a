"""What the settings know about each source (kind, tags, fixed position), for rule selection
by tag and place. Events carry only a source id; the catalog fills in the rest, for every
registered source type (ingest/source_registry.py)."""

from __future__ import annotations

from citywatch.settings import Settings
from ingest.source_registry import SOURCE_TYPES
from rules.base import SourceInfo


def source_catalog(settings: Settings) -> dict[str, SourceInfo]:
    catalog: dict[str, SourceInfo] = {}
    for key, entry in settings.sources.entries():
        position = None if entry.position is None else (entry.position.lat, entry.position.lon)
        catalog[entry.id] = SourceInfo(kind=SOURCE_TYPES[key].kind(entry), tags=frozenset(entry.tags),
                                       position=position)
    return catalog
