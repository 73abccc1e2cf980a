"""The official twilio client (async), shared by the SMS and voice channels.

`api_base_url` points the real client at another Twilio-compatible endpoint (the local one
in the demo and tests) through the client's own http_client hook; the request the client
builds is unchanged, only its host. Twilio's errors are sorted here into permanent (the
number is invalid or unreachable: retrying cannot help) and transient.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, ClassVar, TypeVar

from pydantic import Field
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from ingest.settings_base import Secret, Strict, reveal
from notifier.channels import DeliveryError

TWILIO_API = "https://api.twilio.com"
# Twilio errors that will not succeed on retry (invalid/unreachable number, blocked...).
PERMANENT_TWILIO_CODES = {21211, 21408, 21610, 21612, 21614}

# The client logs request details at INFO; keep them (and any credentials) out of our logs.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)

T = TypeVar("T")


class TwilioAccountSettings(Strict):
    """What every Twilio channel needs: the account, its number, and where its API is."""

    required_secrets: ClassVar[tuple[str, ...]] = ("auth_token",)
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: Secret = None
    from_number: str = Field(pattern=r"^\+[1-9][0-9]{6,14}$")
    api_base_url: str | None = Field(default=None, description="a Twilio-compatible endpoint")
    timeout_s: float = Field(default=10.0, gt=0,
                             description="a provider that hangs must not hold the alert queue")


class _RedirectingHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    def __init__(self, base_url: str, timeout_s: float) -> None:
        super().__init__(timeout=timeout_s)
        self._base_url = base_url.rstrip("/")

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if url.startswith(TWILIO_API):
            url = self._base_url + url[len(TWILIO_API):]
        return await super().request(method, url, *args, **kwargs)


class TwilioAccount:
    """A client for one account; `close` ends its pooled HTTP session."""

    def __init__(self, settings: TwilioAccountSettings) -> None:
        base_url, timeout_s = settings.api_base_url, settings.timeout_s
        self._http = (_RedirectingHttpClient(base_url, timeout_s) if base_url
                      else AsyncTwilioHttpClient(timeout=timeout_s))
        self.client = Client(settings.account_sid, reveal(settings.auth_token), http_client=self._http)

    async def close(self) -> None:
        await self._http.close()

    @staticmethod
    async def call(request: Awaitable[T]) -> T:
        """A request to Twilio, its failure a DeliveryError that says whether to retry."""
        try:
            return await request
        except TwilioRestException as exc:
            permanent = exc.code in PERMANENT_TWILIO_CODES or (400 <= exc.status < 500 and exc.status != 429)
            reason = f"Twilio {exc.status} (code {exc.code}): {exc.msg}"
            raise DeliveryError(reason, permanent=permanent) from exc
        except Exception as exc:  # aiohttp/network errors surface untyped through the client
            raise DeliveryError(f"Twilio request failed: {type(exc).__name__}: {exc}") from exc
