"""The sensor registry (who may report, where they stand) and per-sensor data-quality watch.

Only registered sensors are accepted: an unknown device is a dead letter, not a new
data stream nobody placed on a map. The watch notices a value stuck at the same number
(a frozen sensor keeps reporting) and a sensor that stopped reporting.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from ingest.events import DataQuality, QualityIssue
from ingest.settings import SensorSettings
from ingest.source_types import SourceType


class UnknownSensor(LookupError):
    pass


def _quality(sensor: SensorSettings, time: datetime, issue: QualityIssue, active: bool, detail: str,
             field: str | None = None) -> DataQuality:
    return DataQuality(source_id=sensor.id, source_kind="sensor", time=time, issue=issue, active=active,
                       detail=detail, field=field)


class SensorRegistry:
    def __init__(self, sensors: list[SensorSettings]) -> None:
        self._by_device = {s.device_id: s for s in sensors}
        self._by_id = {s.id: s for s in sensors}

    def lookup(self, device_or_id: str) -> SensorSettings:
        spec = self._by_device.get(device_or_id) or self._by_id.get(device_or_id)
        if spec is None:
            raise UnknownSensor(f"unknown sensor {device_or_id!r} (not in the sensor registry)")
        return spec

    def __iter__(self) -> Iterator[SensorSettings]:
        return iter(self._by_id.values())


@dataclass
class _SensorState:
    last_report: datetime | None = None
    last_values: dict[str, float] = field(default_factory=dict)
    repeats: dict[str, int] = field(default_factory=dict)
    stuck: set[str] = field(default_factory=set)
    missing: bool = False


class SensorWatch:
    """Feed it every accepted reading and call `check_missing` now and then."""

    def __init__(self, stuck_after: int = 12, missing_after_intervals: float = 3.0) -> None:
        self.stuck_after = stuck_after
        self.missing_after_intervals = missing_after_intervals
        self._states: dict[str, _SensorState] = {}

    def observe(self, sensor: SensorSettings, time: datetime, values: dict[str, float]) -> list[DataQuality]:
        state = self._states.setdefault(sensor.id, _SensorState())
        events = []
        if state.missing:
            state.missing = False
            events.append(_quality(sensor, time, "missing_reports", False, detail="reporting again"))
        state.last_report = time
        for name, value in values.items():
            same = state.last_values.get(name) == value
            state.repeats[name] = state.repeats.get(name, 0) + 1 if same else 1
            state.last_values[name] = value
            stuck = state.repeats[name] >= self.stuck_after
            if stuck and name not in state.stuck:
                state.stuck.add(name)
                detail = f"{name}={value} for {self.stuck_after} reports"
                events.append(_quality(sensor, time, "stuck_value", True, field=name, detail=detail))
            elif not stuck and name in state.stuck:
                state.stuck.discard(name)
                changed = f"{name} changed to {value}"
                events.append(_quality(sensor, time, "stuck_value", False, field=name, detail=changed))
        return events

    def check_missing(self, sensors: list[SensorSettings], now: datetime) -> list[DataQuality]:
        events = []
        for sensor in sensors:
            state = self._states.setdefault(sensor.id, _SensorState(last_report=now))
            if state.missing or state.last_report is None:
                continue
            silent = (now - state.last_report).total_seconds()
            if silent > sensor.expected_interval_s * self.missing_after_intervals:
                state.missing = True
                silence = f"no report for {silent:.0f} s"
                events.append(_quality(sensor, now, "missing_reports", True, detail=silence))
        return events


PUSHING_SENSORS = SourceType("sensors", SensorSettings, kinds=("sensor",))
"""Registered sensors push their readings to the HTTP receiver or through MQTT: nothing runs
per sensor (the receivers, and the watch for missing ones, run once)."""
