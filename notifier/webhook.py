"""Webhook channel: the alert as JSON, POSTed with an HMAC-SHA256 signature.

The receiver recomputes `sha256=HMAC(secret, timestamp + "." + body)` and compares it
with `X-CityWatch-Signature`; the timestamp lets it refuse replays of old requests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import ClassVar

import aiohttp
from pydantic import Field

from ingest.settings_base import SigningKey, Strict, reveal
from notifier.channel_kinds import LONG_FORM, ChannelKind
from notifier.channels import DeliveryError, Message


class WebhookSettings(Strict):
    required_secrets: ClassVar[tuple[str, ...]] = ("secret",)
    secret: SigningKey = Field(default=None, description="HMAC key (CITYWATCH_CHANNELS__WEBHOOK__SECRET)")
    timeout_s: float = Field(default=10.0, gt=0)

SIGNATURE_HEADER = "X-CityWatch-Signature"
TIMESTAMP_HEADER = "X-CityWatch-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, max_age_s: float = 300.0,
           now: float | None = None) -> bool:
    try:
        age = (time.time() if now is None else now) - float(timestamp)
    except ValueError:
        return False
    return abs(age) <= max_age_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookChannel:
    name = "webhook"

    def __init__(self, config: WebhookSettings) -> None:
        self.config = config
        self.form = LONG_FORM
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, address: str, message: Message) -> str:
        body = json.dumps({"subject": message.subject, "text": message.text, **message.data},
                          sort_keys=True, default=str).encode()
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(reveal(self.config.secret) or '', timestamp, body)}
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeout_s))
        try:
            async with self._session.post(address, data=body, headers=headers) as response:
                text = await response.text()
                if response.status >= 300:
                    permanent = 400 <= response.status < 500 and response.status not in (408, 429)
                    raise DeliveryError(f"webhook {response.status}: {text[:200]}", permanent=permanent)
                return response.headers.get("X-Request-Id", f"webhook-{response.status}")
        except aiohttp.ClientError as exc:
            raise DeliveryError(f"webhook request failed: {type(exc).__name__}: {exc}") from exc
        except TimeoutError as exc:
            raise DeliveryError("webhook request timed out") from exc


KIND = ChannelKind(name="webhook", settings=WebhookSettings, address="webhook",
                   build=lambda settings, needs: WebhookChannel(settings))
