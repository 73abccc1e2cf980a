"""The resources a worker's agents share: DB pool, writer, detectors, rules, dispatcher.

Built once per process, lazily on first use (the agents call `ready()`), so a
worker that only stores never loads a model and one that only detects never needs
SMTP credentials. Start-up problems (bad rule files, missing secrets) are reported
loudly with their reasons.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from typing import Any

import asyncpg

from citywatch.detection import build_engine
from citywatch.settings import Settings
from detectors.engine import DetectionEngine
from notifier.channels import Channel
from notifier.dispatcher import Dispatcher, Recipient, RetryPolicy
from notifier.email import EmailChannel, SmtpConfig
from notifier.sms import SmsChannel, TwilioConfig
from rules.engine import RuleEngine
from rules.model import Rule
from rules.reload import ReloadResult, RuleDirectoryWatcher
from storage.migrate import migrate
from storage.notification_log import PgNotificationLog
from storage.writer import EventWriter

log = logging.getLogger(__name__)


class ConfigurationError(RuntimeError):
    """The settings cannot work as given (e.g. an SMS channel without its auth token)."""


def check_channels(settings: Settings) -> None:
    """Raise ConfigurationError if a configured channel lacks its secret (checked at start-up)."""
    sms = settings.channels.sms
    if sms is not None and sms.auth_token is None:
        raise ConfigurationError(
            "channels.sms is configured but CITYWATCH_CHANNELS__SMS__AUTH_TOKEN is not set "
            "(environment or secrets file)")


def build_channels(settings: Settings) -> dict[str, Channel]:
    """The configured channels; call inside the event loop (the twilio client opens a session)."""
    check_channels(settings)
    channels: dict[str, Channel] = {}
    email = settings.channels.email
    if email is not None:
        channels["email"] = EmailChannel(SmtpConfig(
            host=email.host, port=email.port, from_addr=email.from_addr, username=email.username,
            password=email.password.get_secret_value() if email.password else None,
            use_tls=email.use_tls, start_tls=email.start_tls, timeout_s=email.timeout_s,
        ))
    sms = settings.channels.sms
    if sms is not None and sms.auth_token is not None:
        channels["sms"] = SmsChannel(TwilioConfig(
            account_sid=sms.account_sid, auth_token=sms.auth_token.get_secret_value(),
            from_number=sms.from_number, api_base_url=sms.api_base_url,
            status_callback=sms.status_callback,
        ))
    return channels


def report_rules(settings: Settings, result: ReloadResult) -> None:
    for error in result.errors:
        log.error("rule file refused (its previous version keeps running): %s", error)
    for rule in result.rules:
        for target in rule.notify:
            if target.recipient not in settings.recipients:
                log.error("rule %s notifies unknown recipient %r", rule.id, target.recipient)
    log.info("%d rules active after changes in %s", len(result.rules),
             ", ".join(str(p) for p in result.changed_files) or "nothing")


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = asyncio.Lock()
        self._pool: asyncpg.Pool | None = None
        self._writer: EventWriter | None = None
        self._engine: DetectionEngine | None = None
        self._dispatcher: Dispatcher | None = None
        self._rules: list[Rule] | None = None
        self._watcher = RuleDirectoryWatcher(settings.rules.paths)
        self._rule_engine: RuleEngine | None = None
        self._channels: dict[str, Channel] = {}

    async def pool(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:
                pool = await asyncpg.create_pool(
                    self.settings.storage.dsn, min_size=1, max_size=self.settings.storage.pool_size
                )
                assert pool is not None
                async with pool.acquire() as connection:
                    applied = await migrate(connection)
                if applied:
                    log.info("applied migrations: %s", ", ".join(applied))
                self._pool = pool
            return self._pool

    async def writer(self) -> EventWriter:
        if self._writer is None:
            self._writer = EventWriter(await self.pool())
        return self._writer

    async def engine(self) -> DetectionEngine:
        async with self._lock:
            if self._engine is None:
                engine = build_engine(self.settings, self.rules)
                await asyncio.to_thread(engine.load)
                log.info("loaded models: %s", ", ".join(d.name for d in engine.detectors))
                self._engine = engine
            return self._engine

    def rules(self) -> list[Rule]:
        if self._rules is None:
            self.reload_rules()
        return self._rules or []

    def reload_rules(self) -> bool:
        """Apply changed rule files; True when the rule set changed."""
        result = self._watcher.poll()
        if result is None:
            return False
        report_rules(self.settings, result)
        self._rules = result.rules
        if self._rule_engine is not None:
            self._rule_engine.replace_rules(result.rules)
        return True

    def rule_engine(self, state: MutableMapping[str, Any]) -> RuleEngine:
        if self._rule_engine is None:
            self._rule_engine = RuleEngine(self.rules(), state=state)
        return self._rule_engine

    async def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            notify = self.settings.notify
            recipients = {
                name: Recipient(name=name, email=r.email, phone=r.phone)
                for name, r in self.settings.recipients.items()
            }
            self._channels = build_channels(self.settings)
            self._dispatcher = Dispatcher(
                self._channels, recipients, PgNotificationLog(await self.pool()),
                RetryPolicy(notify.attempts, notify.base_delay_s, notify.max_delay_s),
            )
        return self._dispatcher

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.close()
        for channel in self._channels.values():
            close = getattr(channel, "close", None)
            if close is not None:
                await close()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
