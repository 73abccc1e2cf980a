"""`citywatch demo`: the whole pipeline on the embedded default, in one command.

Starts (or reuses) the local broker and TimescaleDB, a local SMTP server and
Twilio endpoint that keep what they receive, the worker (as a subprocess, exactly
as it runs in production) with the configured sources, and reports progress.
Stops everything it started on Ctrl-C or after `--duration`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

from citywatch.demo_console import accounts_file, ensure_demo_accounts, start_console, wait_healthy
from citywatch.devservers.serve import local_devservers
from citywatch.devservers.smtp import LocalSmtpServer
from citywatch.devservers.twilio import LocalTwilioEndpoint
from citywatch.infra.manager import LocalInfra
from citywatch.local_ports import devserver_mismatches, infra_mismatches
from citywatch.settings import Settings, load_settings, secrets_file_for
from citywatch.topics import Topics, ensure_topics
from citywatch.watch import TopicWatcher
from notifier.sms import KIND as SMS
from storage.migrate import migrate
from storage.stats import row_counts

PROGRESS_EVERY_S = 5.0
WORKER_STOP_TIMEOUT_S = 30.0


def ensure_demo_secrets(config: Path, settings: Settings) -> Settings:
    """The local Twilio endpoint still checks credentials: make a local token once, keep it
    in the (git-ignored) secrets file, never in the config or the output."""
    sms = settings.channels.of(SMS)
    if sms is None or sms.auth_token is not None:
        return settings
    state = {"infra": {"state_dir": str(settings.infra.state_dir)}}
    secrets_file = secrets_file_for(config, state, os.environ)  # where the worker will look too
    secrets_file.parent.mkdir(parents=True, exist_ok=True)
    with secrets_file.open("a", encoding="utf-8") as handle:
        handle.write(f"CITYWATCH_CHANNELS__SMS__AUTH_TOKEN={secrets.token_hex(16)}\n")
    secrets_file.chmod(0o600)
    return load_settings(config, secrets_file=secrets_file)


class Demo:
    def __init__(self, config: Path, settings: Settings, out: Any = sys.stderr) -> None:
        self.config = config
        self.settings = settings
        self.out = out
        self.started_infra = False
        self.worker: subprocess.Popen[bytes] | None = None
        self.console: subprocess.Popen[bytes] | None = None
        self.console_url: str | None = None

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    async def run(self, duration: float | None) -> dict[str, Any]:
        s = self.settings
        mismatches = infra_mismatches(s) + devserver_mismatches(s)
        if mismatches:
            raise RuntimeError("the settings disagree on local ports:\n  " + "\n  ".join(mismatches))
        infra = LocalInfra.create(s.infra.state_dir, s.infra.host, s.infra.broker_port, s.infra.db_port)
        status = infra.status()
        if status["tansu"]["healthy"] and status["timescaledb"]["healthy"]:
            self.say("local infrastructure already running; reusing it")
        else:
            addresses = await asyncio.to_thread(infra.up)
            self.started_infra = True
            self.say(f"started broker {addresses['broker']} and TimescaleDB {addresses['database']}")
        smtp, twilio = local_devservers(s)
        mail_before = len(smtp.store.messages())
        sms_before = len(twilio.store.messages())
        topics = Topics(s.broker.topic_prefix)
        watcher = TopicWatcher(s.broker.bootstrap_servers, topics, s.broker.max_message_bytes)
        try:
            smtp.start()
            await twilio.start()
            await ensure_topics(s.broker.bootstrap_servers, topics, s.broker.partitions,
                                s.broker.replication_factor)
            connection = await asyncpg.connect(s.storage.dsn)
            try:
                await migrate(connection)
                accounts = await ensure_demo_accounts(connection, s.infra.state_dir)
            finally:
                await connection.close()
            await watcher.start()
            self._start_worker()
            await self._start_console(accounts)
            self._where_to_look(smtp.address, twilio.base_url)
            await self._wait(duration, watcher, smtp, twilio, mail_before, sms_before)
        finally:
            self._stop_worker()
            self._stop_console()
            await watcher.stop()
            rows = await self._rows()
            await twilio.stop()
            smtp.stop()
            if self.started_infra:
                await asyncio.to_thread(infra.down, self.settings.infra.keep_data)
                self.say("stopped the local infrastructure")
        counts = watcher.counts
        return {
            "frames_ingested": counts["frames"],
            "readings": counts["readings"],
            "detections": counts["detections"],
            "alerts_fired": counts["alerts_fired"],
            "alerts_resolved": counts["alerts_resolved"],
            "notifications": counts["notifications"],
            "emails_received": len(smtp.store.messages()) - mail_before,
            "sms_received": len(twilio.store.messages()) - sms_before,
            "dead_letters": counts["deadletter"],
            "rows": rows,
            "mail_dir": str(s.devservers.mail_dir),
            "sms_file": str(s.devservers.sms_file),
            "worker_log": str(self.worker_log),
            "console_url": self.console_url,
            "console_accounts": str(accounts_file(s.infra.state_dir)),
        }

    @property
    def worker_log(self) -> Path:
        return self.settings.infra.state_dir / "logs" / "worker.log"

    def _start_worker(self) -> None:
        self.worker_log.parent.mkdir(parents=True, exist_ok=True)
        log = self.worker_log.open("ab")
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "citywatch", "--config", str(self.config), "worker"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(os.environ),  # the worker finds the same settings and secrets file
            start_new_session=True,  # Ctrl-C reaches us; we stop the worker in order
        )
        log.close()
        self.say(f"worker started (pid {self.worker.pid})")

    async def _start_console(self, accounts: dict[str, str]) -> None:
        """The console beside the worker, and where to sign in (see citywatch/demo_console.py)."""
        s = self.settings
        url = f"http://{s.console.host}:{s.console.port}"
        log = s.infra.state_dir / "logs" / "console.log"
        self.console = start_console(self.config, log)
        if not await wait_healthy(url, self.console):
            self.say(f"the console did not start (port {s.console.port} taken?); see {log}. "
                     "The pipeline runs on without it")
            self._stop_console()
            return
        self.console_url = url
        operator, editor = accounts["demo-operator"], accounts["demo-editor"]
        self.say(f"open the console: {url}  (sign in as demo-operator / {operator}, or demo-editor / "
                 f"{editor} to edit rules; kept in {accounts_file(s.infra.state_dir)})")

    def _stop_console(self) -> None:
        if self.console is not None:
            stop_process(self.console)

    def _stop_worker(self) -> None:
        if self.worker is None or self.worker.poll() is not None:
            return
        if not stop_process(self.worker):
            self.say("worker did not stop in time; killed it")
        self.say("worker stopped")

    def _where_to_look(self, smtp_address: str, twilio_url: str) -> None:
        s = self.settings
        self.say(f"SMTP server {smtp_address}: mail kept in {s.devservers.mail_dir}")
        self.say(f"Twilio endpoint {twilio_url}: SMS kept in {s.devservers.sms_file}")
        self.say(f"TimescaleDB: psql {s.storage.dsn}")
        self.say(f"worker log: {self.worker_log}")

    async def _wait(
        self, duration: float | None, watcher: TopicWatcher, smtp: LocalSmtpServer,
        twilio: LocalTwilioEndpoint, mail_before: int, sms_before: int,
    ) -> None:
        started = time.monotonic()
        while duration is None or time.monotonic() - started < duration:
            remaining = (duration or 1e9) - (time.monotonic() - started)
            await asyncio.sleep(min(PROGRESS_EVERY_S, max(0.1, remaining)))
            if self.worker is not None and self.worker.poll() is not None:
                raise RuntimeError(f"the worker exited with {self.worker.returncode}; see {self.worker_log}")
            c = watcher.counts
            self.say(
                f"[{time.monotonic() - started:5.0f}s] frames {c['frames']}  readings {c['readings']}  "
                f"detections {c['detections']}  alerts {c['alerts']}  notifications {c['notifications']}  "
                f"emails {len(smtp.store.messages()) - mail_before}  "
                f"sms {len(twilio.store.messages()) - sms_before}  dead letters {c['deadletter']}"
            )

    async def _rows(self) -> dict[str, int]:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            connection = await asyncpg.connect(self.settings.storage.dsn, timeout=5)
            try:
                return await row_counts(connection)
            finally:
                await connection.close()
        return {}


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = WORKER_STOP_TIMEOUT_S) -> bool:
    """SIGTERM, then kill -9 after `timeout_s`; whether it stopped by itself (or had already)."""
    if process.poll() is not None:
        return True
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout_s)
        return True
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False


def run_demo(config: Path, settings: Settings, duration: float | None, as_json: bool) -> int:
    settings = ensure_demo_secrets(config, settings)
    demo = Demo(config, settings)
    try:
        summary = asyncio.run(demo.run(duration))
    except KeyboardInterrupt:
        demo.say("stopped")
        return 130
    except (RuntimeError, OSError) as exc:
        demo.say(f"demo failed: {exc}")
        return 1
    if as_json:
        print(json.dumps(summary, sort_keys=True))
    else:
        demo.say(json.dumps(summary, indent=2, sort_keys=True))
    return 0
