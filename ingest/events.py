"""The base event contract and the events ingest owns (frames, readings).

Every event carries a unique `event_id` (sinks deduplicate on it), a
`schema_version` (so consumers can refuse what they do not understand), the
`source_id` it came from and an aware UTC `time` of when it happened.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

SCHEMA_VERSION = 1

SOURCE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
SourceId = Annotated[str, StringConstraints(pattern=SOURCE_ID_PATTERN)]
"""A source id from outside (a camera, a sensor, a drone): letters, digits and `_.:-`, so it is
safe as a Kafka key, a label, and never a path (snapshots are filed under it)."""

ValueName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")]
UnitName = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]{0,32}$")]

MIN_YEAR, MAX_YEAR = 1970, 9998
"""Event times outside these years are refused: before 1970 is a clock that never got set,
and near 9999 an offset would overflow (and no column could hold it)."""

MAX_PERIOD_S = 366 * 86400

SourceKind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
"""camera, drone, sensor, or another source type's kind (ingest/source_registry.py)."""


class EventFormatError(ValueError):
    """Raised when bytes cannot be decoded into an event; the message says why."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Fields every event shares. Frozen so an event cannot change after it is made."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    event_id: UUID = Field(default_factory=uuid4)
    schema_version: int = SCHEMA_VERSION
    source_id: str = Field(min_length=1, max_length=200)
    time: AwareDatetime

    @field_validator("time")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        if not MIN_YEAR <= value.year <= MAX_YEAR:
            raise ValueError(f"time {value.isoformat()} is outside the years {MIN_YEAR}-{MAX_YEAR}")
        return value.astimezone(UTC)

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(f"unsupported schema_version {value} (this build reads {SCHEMA_VERSION})")
        return value

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Self:
        """Decode and validate; any problem becomes an EventFormatError with the reason."""
        try:
            return cls.model_validate_json(raw)
        except ValueError as exc:
            raise EventFormatError(f"invalid {cls.__name__}: {first_lines(str(exc))}") from exc


def first_lines(text: str, limit: int = 6) -> str:
    """A validation error's first lines on one line, for a reason that fits a log or a header."""
    lines = text.strip().splitlines()
    return " | ".join(line.strip() for line in lines[:limit])


class GeoPoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class FrameHeader(Event):
    """Metadata of one sampled frame; the JPEG bytes travel beside it (see frame_codec).

    Drone frames carry where the drone was when the frame was captured (interpolated
    between telemetry points)."""

    source_id: SourceId
    kind: Literal["camera", "drone"] = "camera"
    sequence: int = Field(ge=0, le=2**63 - 1)
    width: int = Field(gt=0, le=65535)
    height: int = Field(gt=0, le=65535)
    encoding: Literal["jpeg"] = "jpeg"
    position: GeoPoint | None = None
    altitude_m: float | None = None
    heading_deg: float | None = Field(default=None, ge=0, lt=360)


class Reading(Event):
    """One sensor report: pollutant values with their units, and the derived AQI."""

    source_id: SourceId
    kind: Literal["sensor"] = "sensor"
    values: dict[ValueName, float] = Field(max_length=64)
    units: dict[ValueName, UnitName] = Field(max_length=64)
    period_s: int | None = Field(default=None, gt=0, le=MAX_PERIOD_S,
                                 description="averaging period of the values")
    position: GeoPoint | None = None
    aqi: int | None = Field(default=None, ge=0, le=500)
    aqi_pollutant: ValueName | None = None
    nowcast_aqi: int | None = Field(default=None, ge=0, le=500,
                                    description="the EPA NowCast index, as AirNow reports it each hour")
    nowcast_pollutant: ValueName | None = None

    @field_validator("values")
    @classmethod
    def _not_empty(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("a reading needs at least one value")
        return value

    def field(self, name: str) -> float | None:
        """A value by name; 'aqi' and 'nowcast_aqi' are the derived indexes. Rules read fields
        through this."""
        if name == "aqi":
            return None if self.aqi is None else float(self.aqi)
        if name == "nowcast_aqi":
            return None if self.nowcast_aqi is None else float(self.nowcast_aqi)
        return self.values.get(name)

    def describe(self) -> dict[str, Any]:
        return {"values": self.values, "units": self.units, "aqi": self.aqi, "nowcast_aqi": self.nowcast_aqi}


class SourceHealth(Event):
    """Periodic health of a source: goes to the telemetry topic and into metrics."""

    kind: Literal["health"] = "health"
    connected: bool
    last_frame_time: AwareDatetime | None = None
    measured_fps: float = Field(default=0.0, ge=0)
    reconnects: int = Field(default=0, ge=0)
    frames_captured: int = Field(default=0, ge=0)
    frames_sent: int = Field(default=0, ge=0)
    frames_gated: int = Field(default=0, ge=0, description="skipped by motion gating")
    frames_dropped: int = Field(default=0, ge=0, description="dropped by back-pressure")
    sample_fps: float = Field(default=0.0, ge=0, description="the current adaptive sampling rate")
    keyframes_only: bool = Field(
        default=False, description="the scene is static: only keyframes are decoded (ingest/av_capture.py)")
    packets_skipped: int = Field(default=0, ge=0, description="video packets never decoded while idle")


QualityIssue = Literal[
    "frozen", "dark", "overexposed", "offline", "stuck_value", "missing_reports", "out_of_range", "late"
]


class DataQuality(Event):
    """A source's data became (or stopped being) untrustworthy; rules can alert on it."""

    kind: Literal["quality"] = "quality"
    source_kind: SourceKind | None = None
    issue: QualityIssue
    active: bool = Field(description="true when the problem starts, false when it clears")
    detail: str = ""
    field: str | None = None
    about_event: UUID | None = Field(
        default=None, description="the one event this report is about (issue 'late': the late event)")


class DroneTelemetry(Event):
    """Where a drone is and how it is doing (telemetry topic, keyed by drone id)."""

    kind: Literal["drone"] = "drone"
    position: GeoPoint
    altitude_m: float | None = Field(default=None, description="above mean sea level")
    relative_altitude_m: float | None = Field(default=None, description="above the take-off point")
    heading_deg: float | None = Field(default=None, ge=0, lt=360)
    speed_m_s: float | None = Field(default=None, ge=0)
    battery_pct: float | None = Field(default=None, ge=0, le=100)


class GeofenceEvent(Event):
    """A drone left (or re-entered) a mission geofence."""

    kind: Literal["geofence"] = "geofence"
    fence: str
    inside: bool
    position: GeoPoint


class SamplingRequest(Event):
    """Asks a source to sample at its active rate for a while (a rule or an operator wants a
    closer look). Travels on the control topic, keyed by the source id."""

    kind: Literal["sampling"] = "sampling"
    boost_s: float = Field(gt=0, le=24 * 3600)
    reason: str = ""
