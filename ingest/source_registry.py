"""Every kind of source, by its key under `sources:`: the one list that the source catalog,
the rule selectors' kinds, and the start of every source are taken from. A new source type
is its module (ending in a `SourceType`, ingest/source_types.py), its list in
`SourcesSettings` (ingest/settings.py), and one line here."""

from __future__ import annotations

from typing import Any

from ingest.csv_replay import AIR_QUALITY_FILES
from ingest.sensors import PUSHING_SENSORS
from ingest.settings import CAMERAS
from ingest.source_types import SourceType

SOURCE_TYPES: dict[str, SourceType[Any]] = {
    source.key: source for source in (CAMERAS, AIR_QUALITY_FILES, PUSHING_SENSORS)}



def source_kinds() -> tuple[str, ...]:
    """Every kind a rule may select sources by (`sources: {kinds: [...]}`)."""
    return tuple(dict.fromkeys(kind for source in SOURCE_TYPES.values() for kind in source.kinds))


SOURCE_KINDS = source_kinds()
"""As the rule schema lists them."""
