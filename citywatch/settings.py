"""The one settings tree: YAML file, then secrets file, then `CITYWATCH_*` environment.

Every model forbids unknown keys, so a typo is an error with its file, line and
column rather than a silently ignored default. Environment variables override the
file with `__` between levels (`CITYWATCH_BROKER__URL=kafka://kafka:9092`); an
unknown variable is an error too. Secrets (SMTP password, Twilio auth token) are
refused in the YAML file: they come only from the environment or a dotenv-style
secrets file (`CITYWATCH_SECRETS_FILE`, default `<state_dir>/secrets.env`), and
are SecretStr so they never print.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from detectors.config import ModelSpec, StepSpec
from detectors.decode import DEFAULT_MAX_PIXELS
from detectors.engine import validate_steps
from ingest.events import SOURCE_ID_PATTERN
from ingest.settings_base import Secret, SigningKey, Strict, secret_paths
from notifier.people import Directory, Person
from notifier.settings import ChannelsSettings, NotifySettings
from rules.timekeeping import AllowedLateness
from rules.yaml_source import (
    SourceError,
    YamlFileError,
    load_yaml_file,
    position_of,
    positioned_errors,
    to_plain,
)
from storage.retention import DEFAULT_RETENTION

ENV_PREFIX = "CITYWATCH_"
# Variables that steer loading itself, not settings keys.
LOADER_VARIABLES = {"CITYWATCH_CONFIG", "CITYWATCH_SECRETS_FILE"}
DEFAULT_CONFIG = Path("citywatch.yaml")


class SettingsError(ValueError):
    """Settings cannot be loaded; the message names each bad key and where it came from."""


class BrokerSettings(Strict):
    """Kafka (or the local Tansu broker). Short group timeouts so a restarted worker rejoins fast."""

    url: str = "kafka://127.0.0.1:19092"
    topic_prefix: str = Field(default="citywatch", pattern=r"^[A-Za-z0-9._-]+$")
    partitions: int = Field(default=4, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    app_id: str = "citywatch"
    session_timeout_s: float = Field(default=6.0, gt=0)
    heartbeat_interval_s: float = Field(default=2.0, gt=0)
    rebalance_timeout_s: float = Field(default=6.0, gt=0)
    max_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    standby_replicas: int = Field(
        default=0, ge=0,
        description="standby copies of each table partition on other workers (Faust's default is 1, "
                    "which leaves a joining worker idle: docs/scaling.md)")

    @property
    def bootstrap_servers(self) -> str:
        """aiokafka's form of the URL: host:port[,host:port] without the scheme."""
        return ",".join(part.split("://", 1)[-1] for part in self.url.split(";"))


class StorageSettings(Strict):
    dsn: str = "postgresql://postgres@127.0.0.1:15433/citywatch"
    pool_size: int = Field(default=4, ge=1)
    batch_size: int = Field(default=2000, ge=1, description="events per write at most (Faust buffers 4096)")
    batch_window_s: float = Field(default=1.0, gt=0)
    write_connections: int = Field(default=2, ge=1, le=16, description=(
        "connections one big batch of a table is split over (at least 1,000 rows each); "
        "at most pool_size"))
    retention_days: dict[str, int] = Field(
        default_factory=lambda: {t: d.days for t, d in DEFAULT_RETENTION.items()},
        description="days kept per table (snapshots follow detections); others keep their default")
    retention_every_s: float = Field(default=3600.0, gt=0, description="how often old chunks are dropped")

    @field_validator("retention_days")
    @classmethod
    def _known_tables(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(DEFAULT_RETENTION))
        if unknown:
            tables = ", ".join(DEFAULT_RETENTION)
            raise ValueError(f"no retention for {', '.join(unknown)} (tables: {tables})")
        if any(days < 1 for days in value.values()):
            raise ValueError("retention is at least one day")
        return {**{t: d.days for t, d in DEFAULT_RETENTION.items()}, **value}

    @model_validator(mode="after")
    def _writer_fits_the_pool(self) -> StorageSettings:
        if self.write_connections > self.pool_size:
            raise ValueError(
                f"write_connections ({self.write_connections}) exceeds pool_size ({self.pool_size})")
        return self

    @property
    def retention(self) -> dict[str, timedelta]:
        return {table: timedelta(days=days) for table, days in self.retention_days.items()}


class LocalInfraSettings(Strict):
    """The embedded default: a local Tansu broker and TimescaleDB under `state_dir`."""

    state_dir: Path = Path(".citywatch")
    host: str = "127.0.0.1"
    broker_port: int = Field(default=19092, ge=1, le=65535)
    db_port: int = Field(default=15433, ge=1, le=65535)
    keep_data: bool = Field(
        default=False, description="`infra down` keeps the database cluster instead of removing it")


class DevServerSettings(Strict):
    """Local SMTP server and Twilio-compatible endpoint, for the demo and tests."""

    host: str = "127.0.0.1"
    smtp_port: int = Field(default=11025, ge=1, le=65535)
    twilio_port: int = Field(default=18088, ge=1, le=65535)
    mail_dir: Path = Path(".citywatch/mail")
    sms_file: Path = Path(".citywatch/sms.jsonl")


class GeoSettings(Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class MotionSettings(Strict):
    """Motion gating: a static scene sends only a heartbeat keyframe every `heartbeat_s`."""

    enabled: bool = True
    pixel_threshold: int = Field(default=25, ge=1, le=255)
    min_changed_ratio: float = Field(default=0.002, gt=0, le=1)
    heartbeat_s: float = Field(default=30.0, gt=0)
    hold_s: float = Field(default=10.0, gt=0, description="stay at the active rate this long after motion")


class ImageQualitySettings(Strict):
    frozen_after_s: float = Field(default=30.0, gt=0)
    dark_below: float = Field(default=16.0, ge=0, le=255)
    overexposed_above: float = Field(default=240.0, ge=0, le=255)


Point = tuple[float, float]


class DroneTelemetrySettings(Strict):
    """A drone video's flight log: DJI's .SRT beside the video, or a MAVLink .tlog."""

    format: Literal["dji_srt", "mavlink_tlog"]
    path: Path
    timezone: str = Field(default="UTC", description="DJI SRT times are local, without a zone")
    offset_s: float = Field(default=0.0, description="telemetry time = video time + offset")


class CameraSourceSettings(Strict):
    id: str = Field(pattern=SOURCE_ID_PATTERN)
    name: str = ""
    kind: Literal["camera", "drone"] = "camera"
    url: str = Field(min_length=1, description="file path, rtsp://, http(s):// MJPEG, or usb:N")
    fps: float = Field(default=2.0, gt=0, le=60, description="sampling rate while active")
    idle_fps: float = Field(default=0.5, gt=0, le=60, description="sampling rate of a static scene")
    motion: MotionSettings = Field(default_factory=MotionSettings)
    quality: ImageQualitySettings = Field(default_factory=ImageQualitySettings)
    loop: bool = Field(default=True, description="files: start again at the end")
    realtime: bool = Field(default=True, description="files: pace like a live camera")
    jpeg_quality: int = Field(default=85, ge=10, le=100)
    max_width: int | None = Field(default=None, ge=32)
    buffer_size: int = Field(default=4, ge=1)
    buffer_policy: Literal["drop_oldest", "drop_newest", "block"] = "drop_oldest"
    reconnect_initial_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)
    stall_timeout_s: float = Field(default=10.0, gt=0)
    health_every_s: float = Field(default=10.0, gt=0)
    position: GeoSettings | None = None
    tags: list[str] = Field(default_factory=list)
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


class AirQualitySourceSettings(Strict):
    id: str = Field(pattern=SOURCE_ID_PATTERN)
    format: Literal["csv"] = "csv"
    path: Path
    columns: dict[str, CsvColumnSettings] = Field(min_length=1)
    time_column: str = "date"
    time_format: str = "%Y-%m-%d %H:%M:%S"
    timezone: str = "UTC"
    period_s: int | None = Field(default=3600, gt=0)
    speed: float = Field(default=3600.0, gt=0, description="data seconds replayed per wall second")
    start_row: int = Field(default=0, ge=0)
    max_rows: int | None = Field(default=None, ge=1)
    resume: bool = Field(default=True, description="a restarted replay resumes after the last row it sent "
                         "(checkpoint in <infra.state_dir>/replay/)")
    position: GeoSettings | None = None
    tags: list[str] = Field(default_factory=list)


class SensorSettings(Strict):
    """A registered air-quality sensor that pushes readings (HTTP); others are refused."""

    id: str = Field(pattern=SOURCE_ID_PATTERN)
    device_id: str = Field(min_length=1, description="e.g. esp8266-13572468 (Sensor.Community X-Sensor)")
    name: str = ""
    position: GeoSettings | None = None
    tags: list[str] = Field(default_factory=list)
    expected_interval_s: float = Field(default=150.0, gt=0)


class HttpReceiverSettings(Strict):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=1, le=65535)
    stuck_after: int = Field(default=12, ge=2, description="identical reports before a value is stuck")
    missing_after_intervals: float = Field(default=3.0, gt=1)
    max_future_skew_s: float = Field(
        default=300.0, ge=0, description="a reading dated further ahead of this clock is refused")


class MqttSubscriptionSettings(Strict):
    topic: str = Field(min_length=1, description="MQTT topic filter, e.g. city/aq/+/readings")
    format: Literal["generic", "sensor-community"] = "generic"


class MqttSettings(Strict):
    """Air-quality readings from an MQTT broker (sensors must be registered under `sensors`)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: Secret = None
    client_id: str | None = None
    subscriptions: list[MqttSubscriptionSettings] = Field(default_factory=list)


class SourcesSettings(Strict):
    cameras: list[CameraSourceSettings] = Field(default_factory=list)
    air_quality: list[AirQualitySourceSettings] = Field(default_factory=list)
    sensors: list[SensorSettings] = Field(default_factory=list)
    http_receiver: HttpReceiverSettings = Field(default_factory=HttpReceiverSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)

    @model_validator(mode="after")
    def _unique_ids(self) -> SourcesSettings:
        ids = [s.id for s in self.cameras] + [s.id for s in self.air_quality] + [s.id for s in self.sensors]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate source ids: {', '.join(duplicates)}")
        return self


class PipelinesSettings(Strict):
    """Which models run on which source: by source id, else by the first matching tag,
    else `default`. An empty default runs every model on every frame."""

    default: list[StepSpec] = Field(default_factory=list)
    sources: dict[str, list[StepSpec]] = Field(default_factory=dict)
    tags: dict[str, list[StepSpec]] = Field(default_factory=dict)
    prune_by_rules: bool = Field(default=True, description="skip models no enabled rule needs for a source")
    snapshots: bool = Field(default=True, description="keep a JPEG with boxes for detections rules may use")
    snapshot_store: Literal["database", "folder"] = Field(default="database", description=(
        "where snapshots are kept: TimescaleDB (every worker and the console read them, on any host) "
        "or snapshot_dir (one host, or a folder every host mounts)"))
    snapshot_dir: Path | None = Field(default=None, description="default: <infra.state_dir>/snapshots")
    snapshot_min_interval_s: float = Field(default=5.0, ge=0)
    max_frame_pixels: int = Field(
        default=DEFAULT_MAX_PIXELS, ge=64 * 64,
        description="a frame whose JPEG header claims more pixels is dead-lettered before decoding")


class RulesSettings(Strict):
    paths: list[Path] = Field(default_factory=lambda: [Path("rules.d")])
    reload_every_s: float = Field(default=5.0, gt=0,
                                  description="how often rule files are checked for changes")
    tick_every_s: float = Field(default=1.0, gt=0, le=60,
                                description="how often the absence clock moves (the one wall-clock rule)")
    allowed_lateness: AllowedLateness = Field(
        default_factory=AllowedLateness,
        description="per source kind: how far out of order an event may come and still be evaluated")


class WorkerSettings(Strict):
    run_sources: bool = Field(
        default=True, description="run the configured sources inside the worker (laptop default)"
    )
    loglevel: Literal["crit", "error", "warn", "info", "debug"] = "info"
    stop_timeout_s: float = Field(
        default=30.0, gt=0,
        description="SIGTERM/SIGINT: exit after this long even if something is stuck (what was not "
                    "acknowledged is read again by the partitions' next owner)")
    table_store: Literal["memory", "rocksdb"] = Field(
        default="memory",
        description="memory: every start and every newly assigned partition replays its changelog from "
                    "the beginning; rocksdb (not yet the default, docs/scaling.md): table files kept in "
                    "the state folder across restarts, so a worker reads only the changelogs' tail")


class MetricsSettings(Strict):
    """Prometheus exposition of a worker's counters; off unless a port is given."""

    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=1, le=65535)


class ConsoleSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    public_url: str | None = Field(
        default=None, pattern=r"^https?://",
        description="how people and Twilio reach the console (acknowledgement links, SMS webhooks)")
    ack_secret: SigningKey = Field(
        default=None, description="signs acknowledgement links (CITYWATCH_CONSOLE__ACK_SECRET)")
    session_secret: SigningKey = Field(
        default=None, description="signs session cookies (CITYWATCH_CONSOLE__SESSION_SECRET)")


class WatchdogSettings(Strict):
    """The console process watches the worker group from outside it (citywatch/watchdog.py):
    `/healthz/group` answers 503 while the group is stalled, and `notify` hears of it."""

    enabled: bool = True
    every_s: float = Field(default=10.0, gt=0, description="how often the group is looked at")
    stalled_after_s: float = Field(
        default=120.0, gt=0,
        description="records waiting with no committed progress, a group not Stable, or a broker that cannot "
                    "be asked, for this long, is a stalled group")
    notify: list[str] = Field(
        default_factory=list,
        description="people (names in `recipients`) told by every channel they have, directly, when the "
                    "group stalls and when it recovers")


class Settings(Strict):
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    infra: LocalInfraSettings = Field(default_factory=LocalInfraSettings)
    devservers: DevServerSettings = Field(default_factory=DevServerSettings)
    sources: SourcesSettings = Field(default_factory=SourcesSettings)
    models: list[ModelSpec] = Field(default_factory=list)
    pipelines: PipelinesSettings = Field(default_factory=PipelinesSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    channels: ChannelsSettings = Field(default_factory=ChannelsSettings)
    recipients: dict[str, Person] = Field(default_factory=dict)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    watchdog: WatchdogSettings = Field(default_factory=WatchdogSettings)
    cache_dir: Path = Path(".cache")

    @model_validator(mode="after")
    def _unique_model_names(self) -> Settings:
        names = [m.name for m in self.models]
        if len(names) != len(set(names)):
            raise ValueError("model names must be unique")
        graphs = [self.pipelines.default, *self.pipelines.sources.values(), *self.pipelines.tags.values()]
        for steps in graphs:
            validate_steps(steps, {m.name: m for m in self.models})
        return self

    @model_validator(mode="after")
    def _people_consistent(self) -> Settings:
        self.directory  # noqa: B018 - builds it: unknown people in teams/schedules/policies are errors
        unknown = sorted(set(self.watchdog.notify) - set(self.recipients))
        if unknown:
            raise ValueError(f"watchdog.notify names people not in recipients: {', '.join(unknown)}")
        return self

    @property
    def directory(self) -> Directory:
        """People, teams, on-call schedules and escalation policies, cross-checked."""
        notify = self.notify
        return Directory(people=self.recipients, teams=notify.teams, schedules=notify.schedules,
                         policies=notify.policies)

    @property
    def snapshot_folder(self) -> Path:
        """Where snapshot files go (`pipelines.snapshot_store: folder`) and are pruned and served
        from: `pipelines.snapshot_dir`, which `resolved()` sets to <infra.state_dir>/snapshots."""
        return self.pipelines.snapshot_dir or self.infra.state_dir / "snapshots"

    def steps_for(self, source_id: str) -> list[StepSpec]:
        pipelines = self.pipelines
        if source_id in pipelines.sources:
            return pipelines.sources[source_id]
        camera = next((c for c in self.sources.cameras if c.id == source_id), None)
        for tag in camera.tags if camera else []:
            if tag in pipelines.tags:
                return pipelines.tags[tag]
        return pipelines.default or [StepSpec(model=m.name) for m in self.models]

    def resolved(self, base: Path) -> Settings:
        """Relative paths made absolute against `base` (the config file's folder)."""
        def fix(path: Path) -> Path:
            return path if path.is_absolute() else (base / path).resolve()

        data = self.model_dump()
        data["cache_dir"] = fix(self.cache_dir)
        data["infra"]["state_dir"] = fix(self.infra.state_dir)
        data["devservers"]["mail_dir"] = fix(self.devservers.mail_dir)
        data["devservers"]["sms_file"] = fix(self.devservers.sms_file)
        data["rules"]["paths"] = [fix(p) for p in self.rules.paths]
        snapshots = self.pipelines.snapshot_dir
        state_dir: Path = data["infra"]["state_dir"]
        data["pipelines"]["snapshot_dir"] = fix(snapshots) if snapshots else state_dir / "snapshots"
        for item, camera in zip(data["sources"]["cameras"], self.sources.cameras, strict=True):
            if camera.is_file:
                item["url"] = str(fix(Path(camera.url)))
            if camera.telemetry is not None:
                item["telemetry"]["path"] = fix(camera.telemetry.path)
        for item in data["sources"]["air_quality"]:
            item["path"] = fix(Path(item["path"]))
        for model in data["models"]:
            if model.get("path") is not None:
                model["path"] = fix(Path(model["path"]))
        for schedule in data["notify"]["schedules"].values():
            if schedule.get("calendar") is not None:
                schedule["calendar"]["path"] = fix(schedule["calendar"]["path"])
        return Settings.model_validate(data)  # model_dump keeps SecretStr values as SecretStr


def load_settings(
    config: Path | None = None,
    environ: Mapping[str, str] | None = None,
    secrets_file: Path | None = None,
) -> Settings:
    """Load YAML (if any), apply the secrets file and the environment, validate, resolve paths."""
    env = dict(os.environ if environ is None else environ)
    path = config or Path(env.get("CITYWATCH_CONFIG", DEFAULT_CONFIG))
    document: Any = None
    if path.exists():
        document = load_yaml_file(path)
    elif config is not None or "CITYWATCH_CONFIG" in env:
        raise SettingsError(f"config file not found: {path}")
    data = to_plain(document) if document is not None else {}
    if not isinstance(data, dict):
        raise SettingsError(f"{path}:1:1: the settings file must be a mapping of keys")
    errors = _secrets_in_file(document, str(path))
    base = path.resolve().parent
    secrets_path = secrets_file or secrets_file_for(path, data, env)
    overrides: dict[str, str] = {}
    if secrets_path.is_file():
        overrides.update({k: v for k, v in dotenv_values(secrets_path).items() if v is not None})
    overrides.update({k: v for k, v in env.items() if k.startswith(ENV_PREFIX)})
    origins: dict[tuple[str, ...], str] = {}
    for name, value in overrides.items():
        if name in LOADER_VARIABLES or not name.startswith(ENV_PREFIX):
            continue
        keys = tuple(part.lower() for part in name[len(ENV_PREFIX):].split("__"))
        if not all(keys):
            errors.append(f"{name}: empty key part (use single underscores inside a key, __ between levels)")
            continue
        _assign(data, keys, _parse_env_value(value))
        origins[keys] = name
    if errors:
        raise SettingsError("\n".join(errors))
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, document, str(path), origins)) from exc
    return settings.resolved(base)


def secrets_file_for(config: Path, data: Mapping[str, Any], env: Mapping[str, str]) -> Path:
    """CITYWATCH_SECRETS_FILE, else secrets.env in the effective state directory."""
    if "CITYWATCH_SECRETS_FILE" in env:
        return Path(env["CITYWATCH_SECRETS_FILE"])
    infra = data.get("infra")
    state_dir = Path(env.get("CITYWATCH_INFRA__STATE_DIR")
                     or str((infra or {}).get("state_dir", ".citywatch") if isinstance(infra, dict)
                            else ".citywatch"))
    if not state_dir.is_absolute():
        state_dir = config.resolve().parent / state_dir
    return state_dir / "secrets.env"


def _secrets_in_file(document: Any, filename: str) -> list[str]:
    errors = []
    for keys in sorted(secret_paths(Settings)):
        node = document
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            line, column = position_of(document, list(keys))
            env_name = ENV_PREFIX + "__".join(k.upper() for k in keys)
            errors.append(str(SourceError(
                filename, line, column,
                f"{'.'.join(keys)}: secrets are not allowed in the settings file; "
                f"set {env_name} in the environment or the secrets file")))
    return errors


def _assign(data: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


def _parse_env_value(value: str) -> Any:
    """JSON for lists and objects (`[...]`, `{...}`); everything else stays a string for pydantic."""
    text = value.strip()
    if text.startswith(("[", "{")):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return value
    return value


def _from_env(loc: tuple[str, ...], keys: tuple[str, ...], document_keys: set[str]) -> bool:
    """Whether an error at `loc` is about the value an environment variable set at `keys`."""
    if loc[: len(keys)] == keys:
        return True
    # An unknown section (e.g. CITYWATCH_BROKR__URL) errors at the section, above the variable.
    return bool(loc) and keys[: len(loc)] == loc and loc[0] not in document_keys


def _describe(
    exc: ValidationError, document: Any, filename: str, origins: dict[tuple[str, ...], str]
) -> str:
    lines = []
    document_keys = set(document) if isinstance(document, dict) else set()
    for item in exc.errors(include_url=False):
        loc = tuple(str(part) for part in item["loc"])
        env_name = next((name for keys, name in origins.items()
                         if _from_env(loc, keys, document_keys)), None)
        if env_name is not None:
            where = ".".join(loc) or "(top level)"
            lines.append(f"environment {env_name}: {where}: {item['msg']}")
            continue
        if document is None:
            lines.append(f"{'.'.join(loc) or '(top level)'}: {item['msg']}")
            continue
        lines.extend(str(e) for e in positioned_errors([item], document, filename))
    return "\n".join(lines)


__all__ = ["Settings", "SettingsError", "YamlFileError", "load_settings"]
