"""SMS through the official twilio client (async).

`api_base_url` points the real client at another Twilio-compatible endpoint (the
local one in the demo and tests) through the client's own http_client hook;
the request the client builds is unchanged, only its host.
"""

from __future__ import annotations

import logging
from typing import Any

from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from ingest.settings_base import reveal
from notifier.channels import DeliveryError, Message
from notifier.segments import segments
from notifier.senders import Sender, SenderPool
from notifier.settings import TwilioSettings

TWILIO_API = "https://api.twilio.com"
# Twilio errors that will not succeed on retry (invalid/unreachable number, blocked...).
PERMANENT_TWILIO_CODES = {21211, 21408, 21610, 21612, 21614}

# The client logs request details at INFO; keep them (and any credentials) out of our logs.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


class _RedirectingHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    def __init__(self, base_url: str, timeout_s: float) -> None:
        super().__init__(timeout=timeout_s)
        self._base_url = base_url.rstrip("/")

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if url.startswith(TWILIO_API):
            url = self._base_url + url[len(TWILIO_API):]
        return await super().request(method, url, *args, **kwargs)


class SmsChannel:
    name = "sms"

    def __init__(self, config: TwilioSettings) -> None:
        self.config = config
        http_client = (
            _RedirectingHttpClient(config.api_base_url, config.timeout_s)
            if config.api_base_url
            else AsyncTwilioHttpClient(timeout=config.timeout_s)
        )
        self._http = http_client
        self._client = Client(config.account_sid, reveal(config.auth_token), http_client=http_client)
        self.senders = SenderPool([Sender(config.from_number, config.segments_per_s),
                                   *(Sender(s.number, s.segments_per_s) for s in config.more_senders)])

    async def close(self) -> None:
        """Close the client's pooled HTTP session."""
        await self._http.close()

    async def send(self, address: str, message: Message) -> str:
        sender = await self.senders.acquire(segments(message.text))  # waits for the sender's rate
        kwargs: dict[str, Any] = {"to": address, "from_": sender, "body": message.text}
        if self.config.status_callback:
            kwargs["status_callback"] = self.config.status_callback
        if self.config.validity_period_s:
            kwargs["validity_period"] = self.config.validity_period_s
        try:
            created = await self._client.messages.create_async(**kwargs)
        except TwilioRestException as exc:
            permanent = exc.code in PERMANENT_TWILIO_CODES or (400 <= exc.status < 500 and exc.status != 429)
            reason = f"Twilio {exc.status} (code {exc.code}): {exc.msg}"
            raise DeliveryError(reason, permanent=permanent) from exc
        except Exception as exc:  # aiohttp/network errors surface untyped through the client
            raise DeliveryError(f"Twilio request failed: {type(exc).__name__}: {exc}") from exc
        return str(created.sid)
