"""A real SMTP server on loopback (aiosmtpd) that keeps every message it receives.

Each message is written as an .eml file in `mail_dir` (open it with any mail
client or `cat`), and one JSON line per message goes to `mail_dir/index.jsonl`
so tests and the demo can count and inspect mail without parsing MIME.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

# aiosmtpd logs every SMTP command at INFO; the demo output is about the pipeline.
logging.getLogger("mail.log").setLevel(logging.WARNING)


class MailStore:
    def __init__(self, mail_dir: Path) -> None:
        self.mail_dir = mail_dir
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        self.index = mail_dir / "index.jsonl"
        self._lock = threading.Lock()

    def save(self, sender: str, recipients: list[str], data: bytes) -> Path:
        parsed = message_from_bytes(data, policy=default_policy)
        received = datetime.now(UTC)
        with self._lock:
            path = self.mail_dir / f"{received:%Y%m%dT%H%M%S%f}.eml"
            path.write_bytes(data)
            entry = {
                "received_at": received.isoformat(), "from": sender, "to": recipients,
                "subject": str(parsed.get("Subject", "")), "message_id": str(parsed.get("Message-ID", "")),
                "in_reply_to": str(parsed.get("In-Reply-To", "")),
                "file": path.name,
            }
            with self.index.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
        return path

    def messages(self) -> list[dict[str, Any]]:
        if not self.index.exists():
            return []
        return [json.loads(line) for line in self.index.read_text(encoding="utf-8").splitlines() if line]


@dataclass
class SmtpFaults:
    """Failures to inject, for tests of retries: the next `count` messages get `reply`
    (e.g. '451 4.3.0 try later' or '550 5.1.1 no such user') after `delay_s` seconds."""

    count: int = 0
    reply: str = "451 4.3.0 Temporary failure, try later"
    delay_s: float = 0.0


class _Handler:
    def __init__(self, store: MailStore, faults: SmtpFaults) -> None:
        self.store = store
        self.faults = faults

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        faults = self.faults
        if faults.delay_s:
            await asyncio.sleep(faults.delay_s)
        if faults.count > 0:
            faults.count -= 1
            return faults.reply
        self.store.save(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        return "250 Message accepted for delivery"


class LocalSmtpServer:
    """Start/stop an aiosmtpd server (it runs in its own thread)."""

    def __init__(self, host: str, port: int, mail_dir: Path) -> None:
        self.store = MailStore(mail_dir)
        self.faults = SmtpFaults()
        self._controller = Controller(_Handler(self.store, self.faults), hostname=host, port=port)

    @property
    def address(self) -> str:
        return f"smtp://{self._controller.hostname}:{self._controller.port}"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
