"""The resources a worker's agents share: DB pool, writer, detectors, rules, dispatcher.

Built once per process, lazily on first use, so a
worker that only stores never loads a model and one that only detects never needs
SMTP credentials. Start-up problems (bad rule files, missing secrets) are reported
loudly with their reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, MutableMapping
from datetime import timedelta
from typing import Any

import asyncpg

from citywatch.catalog import source_catalog
from citywatch.detection import build_engine
from citywatch.publisher import Publisher
from citywatch.rule_checks import against
from citywatch.rulebook import RuleBook
from citywatch.settings import Settings
from detectors.engine import DetectionEngine
from detectors.snapshots import FolderSnapshots, SnapshotSink
from notifier.acklinks import AckLinks
from notifier.channel_kinds import ChannelNeeds, ImageLoader
from notifier.channels import Channel
from notifier.dispatcher import Dispatcher, RetryPolicy
from notifier.email import read_image_file
from notifier.log import NotificationLog, OutboxPolicy
from rules.engine import RuleEngine, Scope
from rules.events import Alert
from rules.library import LibraryChange, RuleLibrary
from rules.model import Rule
from rules.reload import RuleDirectoryWatcher
from storage.community import ensure_community_features
from storage.migrate import migrate
from storage.snapshots import PgSnapshots, event_id_of
from storage.writer import EventWriter

log = logging.getLogger(__name__)
EVIDENCE_LOOKUP_S = 1.0


class ConfigurationError(RuntimeError):
    """The settings cannot work as given (e.g. an SMS channel without its auth token)."""


def check_channels(settings: Settings) -> None:
    """Raise ConfigurationError if a configured channel lacks a secret it needs (checked at start-up)."""
    for kind, configured in settings.channels.configured():
        for secret in kind.required_secrets:
            if getattr(configured, secret) is None:
                raise ConfigurationError(
                    f"channels.{kind.name} is configured but "
                    f"CITYWATCH_CHANNELS__{kind.name.upper()}__{secret.upper()} "
                    "is not set (environment or secrets file)")


def build_channels(settings: Settings, load_image: ImageLoader = read_image_file) -> dict[str, Channel]:
    """The configured channels; call inside the event loop (the twilio client opens a session).
    `load_image` finds an alert's evidence snapshot for the email."""
    check_channels(settings)
    needs = ChannelNeeds(load_image)
    return {kind.name: kind.build(configured, needs) for kind, configured in settings.channels.configured()}


def report_rules(settings: Settings, rules: list[Rule]) -> None:
    """Rules published with other settings can name what these lack: said, not refused (the
    worker runs what the rules topic holds; `rules check` and `publish` refuse it up front)."""
    check = against(settings)
    for rule in rules:
        for where, problem in check(rule):
            log.error("rule %s (%s): %s", rule.id, ".".join(map(str, where)), problem)
    log.info("%d rules active", len(rules))


def ack_links(settings: Settings) -> AckLinks | None:
    """Signed acknowledgement links in emails, where the console is reachable and a secret set."""
    console = settings.console
    if console.public_url is None or console.ack_secret is None:
        return None
    return AckLinks(console.public_url, console.ack_secret.get_secret_value())


async def set_up_community_features(pool: asyncpg.Pool) -> None:
    """Compression and rollups on a community-licensed server, beside the pipeline (filling
    the rollups from a big history takes a while once). A failure costs those savings,
    never the pipeline: it is logged and the worker runs on."""
    try:
        async with pool.acquire() as connection:
            await ensure_community_features(connection)
    except Exception:
        log.exception("setting up TimescaleDB's community features failed; running without them")


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = asyncio.Lock()
        self._community: asyncio.Task[None] | None = None
        self._pool: asyncpg.Pool | None = None
        self._writer: EventWriter | None = None
        self._engine: DetectionEngine | None = None
        self._dispatcher: Dispatcher | None = None
        self._watcher = RuleDirectoryWatcher(settings.rules.paths)
        self.rulebook: RuleBook | None = None
        self._folder_rules: list[Rule] = []
        self._rule_engines: dict[Scope, RuleEngine] = {}
        self.sources = source_catalog(settings)
        self._channels: dict[str, Channel] = {}
        self._snapshots = PgSnapshots(self.pool)

    async def pool(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:
                pool = await asyncpg.create_pool(
                    self.settings.storage.dsn, min_size=1, max_size=self.settings.storage.pool_size
                )
                assert pool is not None
                async with pool.acquire() as connection:
                    applied = await migrate(connection)
                self._community = asyncio.create_task(set_up_community_features(pool))
                if applied:
                    log.info("applied migrations: %s", ", ".join(applied))
                self._pool = pool
            return self._pool

    async def writer(self) -> EventWriter:
        if self._writer is None:
            self._writer = EventWriter(await self.pool(), self.settings.storage.write_connections)
        return self._writer

    async def engine(self) -> DetectionEngine:
        async with self._lock:
            if self._engine is None:
                engine = build_engine(self.settings, self.rules, self.snapshot_sink())
                await asyncio.to_thread(engine.load)
                waiting = sorted(set(engine.models) - engine.loaded)
                later = f" (no rule needs {', '.join(waiting)} yet: loaded when one does)" if waiting else ""
                log.info("loaded models: %s%s", ", ".join(sorted(engine.loaded)) or "none", later)
                self._engine = engine
            return self._engine

    def use_rulebook(self, publisher: Publisher, leads: Callable[[], bool] = lambda: True) -> RuleBook:
        """Rules come from the `rules` topic (through this rule book) from now on; `leads`:
        whether this process is the one that publishes the rule folder."""
        self.rulebook = RuleBook(self._watcher, publisher, self._rules_changed, leads)
        return self.rulebook

    def rules(self) -> list[Rule]:
        if self.rulebook is not None:
            return self.rulebook.library.rules()
        result = self._watcher.poll()  # without a broker (tools): the folder itself
        if result is not None:
            self._folder_rules = result.rules
        return list(self._folder_rules)

    def _rules_changed(self, library: RuleLibrary, change: LibraryChange) -> None:
        rules = library.rules()
        if change.rules_changed:
            report_rules(self.settings, rules)
        for engine in self._rule_engines.values():
            engine.replace_rules(rules)
            engine.set_silences(library.silences.values())
        if self._engine is not None and change.rules_changed:
            kept, freed = self._engine.retarget()
            if freed:
                log.info("no rule needs %s any more: freed (loaded: %s)", ", ".join(sorted(freed)),
                         ", ".join(sorted(kept)) or "none")

    async def rules_ready(self) -> None:
        if self.rulebook is not None:
            await self.rulebook.ready.wait()

    def rule_engine(self, state: MutableMapping[str, Any], scope: Scope = "per_source") -> RuleEngine:
        engine = self._rule_engines.get(scope)
        if engine is None:
            silences = self.rulebook.library.silences.values() if self.rulebook is not None else ()
            engine = RuleEngine(self.rules(), state=state, sources=self.sources, silences=silences,
                                scope=scope, lateness=self.settings.rules.allowed_lateness)
            self._rule_engines[scope] = engine
        return engine

    def snapshot_sink(self) -> SnapshotSink:
        """Where evidence snapshots go: TimescaleDB (any host reads them) or a folder."""
        if self.settings.pipelines.snapshot_store == "folder":
            return FolderSnapshots(self.settings.snapshot_folder)
        return self._snapshots

    async def with_evidence(self, alert: Alert) -> Alert:
        """An alert whose deciding frame carried no snapshot takes its source's latest one in
        its window (from its start, less one snapshot interval, to its time), so the email
        shows the scene; best effort within EVIDENCE_LOOKUP_S, never holding a notification."""
        if alert.evidence.snapshot is not None or self.settings.pipelines.snapshot_store == "folder":
            return alert
        known = self.sources.get(alert.source_id)
        if known is not None and known.kind not in ("camera", "drone"):
            return alert  # a sensor's alert: no camera took a picture of it, no query to ask
        interval = max(self.settings.pipelines.snapshot_min_interval_s, 1.0)
        since = alert.started_at - timedelta(seconds=interval)
        try:
            reference = await asyncio.wait_for(self._snapshots.nearest(alert.source_id, since, alert.time),
                                               EVIDENCE_LOOKUP_S)
        except Exception as exc:  # the picture is optional, the notification is not
            log.warning("no nearest snapshot for alert %s: %s: %s", alert.alert_id, type(exc).__name__, exc)
            return alert
        if reference is None:
            return alert
        evidence = alert.evidence.model_copy(update={"snapshot": reference})
        return alert.model_copy(update={"evidence": evidence})

    async def load_snapshot(self, reference: str) -> bytes | None:
        """The JPEG a detection's or alert's snapshot reference names, wherever it was kept."""
        if event_id_of(reference) is not None:
            return await self._snapshots.load(reference)
        return await read_image_file(reference)

    async def dispatcher(self, notification_log: NotificationLog) -> Dispatcher:
        """The dispatcher over `notification_log` (the worker's is in Faust tables, so sending
        never waits for the database)."""
        if self._dispatcher is None:
            notify = self.settings.notify
            self._channels = build_channels(self.settings, self.load_snapshot)
            self._dispatcher = Dispatcher(
                self._channels, self.settings.recipients, notification_log,
                RetryPolicy(notify.attempts, notify.base_delay_s, notify.max_delay_s),
                failover_after=notify.failover_to_email_after,
                ack_links=ack_links(self.settings),
                outbox=OutboxPolicy(max_attempts=notify.outbox_max_attempts,
                                    max_age_s=notify.outbox_max_age_s,
                                    retry_every_s=notify.outbox_retry_every_s),
            )
        return self._dispatcher

    async def close(self) -> None:
        if self._community is not None and not self._community.done():
            self._community.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._community
        if self._engine is not None:
            await self._engine.close()
        for channel in self._channels.values():
            close = getattr(channel, "close", None)
            if close is not None:
                await close()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
