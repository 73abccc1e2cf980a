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
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import (
    Field,
    ValidationError,
    model_validator,
)

from detectors.config import ModelSpec, StepSpec
from detectors.decode import DEFAULT_MAX_PIXELS
from detectors.engine import validate_steps
from ingest.settings import SourcesSettings
from ingest.settings_base import SigningKey, Strict, secret_paths
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
from storage.settings import StorageSettings

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
        default="rocksdb",
        description="rocksdb: table files kept in the state folder across restarts (trusted only after a "
                    "clean stop), so a worker reads only the changelogs' tail; memory: every start and every "
                    "newly assigned partition replays its changelog from the beginning (docs/scaling.md)")


class MetricsSettings(Strict):
    """Prometheus exposition of a worker's counters; off unless a port is given. `citywatch
    ingest` serves its own on `ingest_port` (default: `port` + 1), so both run on one config."""

    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=1, le=65535)
    ingest_port: int | None = Field(default=None, ge=1, le=65535)

    def port_for(self, role: Literal["worker", "ingest"]) -> int | None:
        if role == "worker" or (self.port is None and self.ingest_port is None):
            return self.port
        return self.ingest_port if self.ingest_port is not None else (self.port or 0) + 1


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
    dev_pages: bool = Field(
        default=False, description="show the local SMTP server's mailbox and SMS log (the demo turns it on)")


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
            if camera.telemetry is not None and camera.telemetry.path is not None:
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
