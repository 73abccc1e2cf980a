"""Ingest's settings: the sources (cameras and drones, air-quality files, pushing sensors,
the HTTP receiver, MQTT). The adapters take them as they are; citywatch/settings.py puts
them under `sources`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from ingest.aq_formats import PUSH_FORMATS
from ingest.backpressure import Policy
from ingest.corrections import PmCorrection
from ingest.settings_base import Registered, Secret, Strict
from ingest.source_types import SourceEntry, SourceType


class MotionSettings(Strict):
    """Motion gating: a static scene sends only a heartbeat keyframe every `heartbeat_s`."""

    enabled: bool = True
    pixel_threshold: int = Field(default=25, ge=1, le=255)
    min_changed_ratio: float = Field(default=0.002, gt=0, le=1)
    heartbeat_s: float = Field(default=30.0, gt=0)
    hold_s: float = Field(default=10.0, gt=0, description="stay at the active rate this long after motion")


class ImageQualitySettings(Strict):
    frozen_after_s: float = Field(default=30.0, gt=0, description="identical frames this long: frozen")
    frozen_max_diff: float = Field(default=0.5, ge=0, description="mean absolute difference below which "
                                   "two frames are identical")
    dark_below: float = Field(default=16.0, ge=0, le=255)
    overexposed_above: float = Field(default=240.0, ge=0, le=255)


Point = tuple[float, float]


class DroneTelemetrySettings(Strict):
    """A drone video's flight log: DJI's .SRT beside the video, or a MAVLink .tlog."""

    format: Literal["dji_srt", "mavlink_tlog", "mavlink_live"]
    path: Path | None = Field(default=None, description="the flight log (dji_srt, mavlink_tlog)")
    address: str | None = Field(
        default=None, description="mavlink_live: where to listen, e.g. udpin:0.0.0.0:14550 (pymavlink)")
    stale_after_s: float = Field(default=3.0, gt=0, description="mavlink_live: no position after silence")
    timezone: str = Field(default="UTC", description="DJI SRT times are local, without a zone")
    offset_s: float = Field(default=0.0, description="telemetry time = video time + offset")
    gps_order: Literal["lat_lon", "lon_lat"] | None = Field(
        default=None, description="dji_srt GPS(...) tuples, where the file cannot tell (ingest/dji_srt.py)")
    start_time: datetime | None = Field(
        default=None, description="the flight's start, for a log that writes no clock (DJI GO 4's layout)")

    @model_validator(mode="after")
    def _where(self) -> DroneTelemetrySettings:
        if self.format == "mavlink_live" and not self.address:
            raise ValueError("mavlink_live needs an address (e.g. udpin:0.0.0.0:14550)")
        if self.format != "mavlink_live" and self.path is None:
            raise ValueError(f"{self.format} needs the path of the flight log")
        return self


class CameraSourceSettings(SourceEntry):
    name: str = ""
    kind: Literal["camera", "drone"] = "camera"
    url: str = Field(min_length=1, description="file path, rtsp://, http(s):// MJPEG, or usb:N")
    fps: float = Field(default=2.0, gt=0, le=60, description="sampling rate while active")
    idle_fps: float = Field(default=0.5, gt=0, le=60, description="sampling rate of a static scene")
    motion: MotionSettings = Field(default_factory=MotionSettings)
    quality: ImageQualitySettings = Field(default_factory=ImageQualitySettings)
    loop: bool = Field(default=True, description="files: start again at the end")
    realtime: bool = Field(default=True, description="files: pace like a live camera")
    decoder: Literal["auto", "pyav", "opencv"] = Field(
        default="auto", description="auto: PyAV (FFmpeg) for files and streams, OpenCV for usb:N")
    keyframes_when_idle: bool = Field(
        default=True, description="PyAV: decode only keyframes while the scene is static (motion gating on)")
    jpeg_quality: int = Field(default=85, ge=10, le=100)
    max_width: int | None = Field(default=None, ge=32)
    buffer_size: int = Field(default=4, ge=1)
    buffer_policy: Policy = "drop_oldest"
    reconnect_initial_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)
    stall_timeout_s: float = Field(default=10.0, gt=0)
    health_every_s: float = Field(default=10.0, gt=0)
    zones: dict[str, list[Point]] = Field(
        default_factory=dict, description="named polygons in frame pixels, for detectors")
    lines: dict[str, tuple[Point, Point]] = Field(
        default_factory=dict, description="named counting lines in frame pixels (first point -> second)")
    ground_m_per_px: float | None = Field(default=None, gt=0, description="ground scale, for speeds in m/s")
    telemetry: DroneTelemetrySettings | None = None
    geofences: dict[str, list[Point]] = Field(
        default_factory=dict, description="drones: named (lat, lon) polygons the drone must stay in")

    @model_validator(mode="after")
    def _consistent(self) -> CameraSourceSettings:
        if self.idle_fps > self.fps:
            raise ValueError("idle_fps must not exceed fps")
        for name, polygon in (self.zones | self.geofences).items():
            if len(polygon) < 3:
                raise ValueError(f"zone or geofence {name!r} needs at least 3 points")
        if (self.telemetry or self.geofences) and self.kind != "drone":
            raise ValueError("telemetry and geofences need kind: drone")
        return self

    @property
    def is_file(self) -> bool:
        return "://" not in self.url and not self.url.startswith("usb:")


class CsvColumnSettings(Strict):
    field: str = Field(min_length=1)
    unit: str = Field(min_length=1)


class AirQualitySourceSettings(SourceEntry):
    format: Literal["csv"] = "csv"
    path: Path
    columns: dict[str, CsvColumnSettings] = Field(min_length=1)
    time_column: str = Field(default="date", description="matched case-insensitively when not exact")
    time_format: str | None = Field(
        default=None, description="strptime layout, or 'iso'; default: inferred from the rows")
    delimiter: str | None = Field(default=None, min_length=1, max_length=1,
                                  description="default: sniffed (comma, semicolon, tab or pipe)")
    timezone: str = "UTC"
    period_s: int | None = Field(default=3600, gt=0)
    speed: float = Field(default=3600.0, gt=0, description="data seconds replayed per wall second")
    start_row: int = Field(default=0, ge=0)
    max_rows: int | None = Field(default=None, ge=1)
    resume: bool = Field(default=True, description="a restarted replay resumes after the last row it sent "
                         "(checkpoint in <infra.state_dir>/replay/)")


class SensorSettings(SourceEntry):
    """A registered air-quality sensor that pushes readings (HTTP); others are refused."""

    device_id: str = Field(min_length=1, description="e.g. esp8266-13572468 (Sensor.Community X-Sensor)")
    name: str = ""
    pm25_correction: PmCorrection | None = Field(
        default=None, description="us-epa-2021: Barkjohn et al., for PurpleAir-type (Plantower) sensors")
    expected_interval_s: float = Field(default=150.0, gt=0)


class HttpReceiverSettings(Strict):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=1, le=65535)
    stuck_after: int = Field(default=12, ge=2, description="identical reports before a value is stuck")
    missing_after_intervals: float = Field(default=3.0, gt=1)
    max_future_skew_s: float = Field(
        default=300.0, ge=0, description="a reading dated further ahead of this clock is refused")


PayloadFormat = Annotated[str, Registered("payload format", "formats", lambda: PUSH_FORMATS)]
"""A push format of ingest/aq_formats.py (`PUSH_FORMATS`)."""


class MqttSubscriptionSettings(Strict):
    topic: str = Field(min_length=1, description="MQTT topic filter, e.g. city/aq/+/readings")
    format: PayloadFormat = "generic"


class MqttSettings(Strict):
    """Air-quality readings from an MQTT broker (sensors must be registered under `sensors`)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: Secret = None
    client_id: str | None = None
    subscriptions: list[MqttSubscriptionSettings] = Field(default_factory=list)
    reconnect_max_s: float = Field(default=60.0, gt=0, description="longest wait between reconnections")


class SourcesSettings(Strict):
    """One list per source type (ingest/source_registry.py names each by its key), and the
    receivers that pushing sensors report to."""

    cameras: list[CameraSourceSettings] = Field(default_factory=list)
    air_quality: list[AirQualitySourceSettings] = Field(default_factory=list)
    sensors: list[SensorSettings] = Field(default_factory=list)
    http_receiver: HttpReceiverSettings = Field(default_factory=HttpReceiverSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)

    @model_validator(mode="after")
    def _unique_ids(self) -> SourcesSettings:
        ids = [entry.id for _, entry in self.entries()]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate source ids: {', '.join(duplicates)}")
        return self

    def entries(self) -> list[tuple[str, SourceEntry]]:
        """Every configured source, with the key of its list."""
        found: list[tuple[str, SourceEntry]] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, list):
                found += [(name, entry) for entry in value if isinstance(entry, SourceEntry)]
        return found


CAMERAS = SourceType("cameras", CameraSourceSettings, kinds=("camera", "drone"), kind_of=lambda c: c.kind)
"""Cameras and drones: citywatch/sources.py runs them (it also follows their control topic
and their metrics), so their type has no `run`."""
