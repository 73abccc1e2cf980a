"""What the settings know about each source (kind, tags, fixed position), for rule selection
by tag and place. Events carry only a source id; the catalog fills in the rest."""

from __future__ import annotations

from citywatch.settings import Settings
from ingest.settings import AirQualitySourceSettings, GeoSettings, SensorSettings
from rules.base import SourceInfo


def _place(position: GeoSettings | None) -> tuple[float, float] | None:
    return None if position is None else (position.lat, position.lon)


def source_catalog(settings: Settings) -> dict[str, SourceInfo]:
    sources = settings.sources
    catalog = {
        camera.id: SourceInfo(kind=camera.kind, tags=frozenset(camera.tags), position=_place(camera.position))
        for camera in sources.cameras
    }
    sensors: list[AirQualitySourceSettings | SensorSettings] = [*sources.air_quality, *sources.sensors]
    for sensor in sensors:
        catalog[sensor.id] = SourceInfo(
            kind="sensor", tags=frozenset(sensor.tags), position=_place(sensor.position))
    return catalog
