"""A local HTTP endpoint that speaks the part of Twilio's REST API CityWatch uses.

The real `twilio` client talks to it through its http_client hook (notifier.sms), so
the request is exactly what Twilio would receive: HTTP basic auth with the account
SID and auth token, a form-encoded POST to
`/2010-04-01/Accounts/{AccountSid}/Messages.json`. Accepted messages are appended
to a JSON-lines file and answered with 201 and a Message resource, as Twilio does.
Calls (`.../Calls.json`, with their TwiML) go to a second file, `calls.jsonl` beside it,
answered with a Call resource; nobody rings, so a test plays the person called with
`key_press`, which posts the digits to the call's <Gather> action signed as Twilio signs.
Wrong credentials get 401 (code 20003), a malformed number 400 (code 21211).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from aiohttp import web

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
GSM_SEGMENT_CHARS = 160


@dataclass
class TwilioFaults:
    """Failures to inject, for tests of retries: the next `count` requests get `status`
    (503: Twilio unavailable; 400 with code 21211: an invalid number) after `delay_s`."""

    count: int = 0
    status: int = 503
    code: int = 20500
    delay_s: float = 0.0


class SmsStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def save(self, message: dict[str, Any]) -> None:
        """One JSON line: the Message resource, plus when it arrived (µs, for latency figures)."""
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({**message, "received_at": datetime.now(UTC).isoformat()}) + "\n")

    def messages(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]


def _error(status: int, code: int, message: str) -> web.Response:
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}
    return web.json_response(body, status=status)


class LocalTwilioEndpoint:
    def __init__(
        self, host: str, port: int, sms_file: Path,
        account_sid: str | None = None, auth_token: str | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.store = SmsStore(sms_file)
        self.calls = SmsStore(sms_file.with_name("calls.jsonl"))
        self.faults = TwilioFaults()
        self.account_sid, self.auth_token = account_sid, auth_token
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create_message)
        app.router.add_get("/2010-04-01/Accounts/{sid}/Messages.json", self._list_messages)
        app.router.add_post("/2010-04-01/Accounts/{sid}/Calls.json", self._create_call)
        return app

    def _authorised(self, request: web.Request) -> bool:
        if self.auth_token is None:
            return True
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return secrets.compare_digest(user, self.account_sid or user) and secrets.compare_digest(
            password, self.auth_token)

    async def _checked(self, request: web.Request,
                       no_sender_code: int) -> tuple[str, Any, str, str] | web.Response:
        """What Messages and Calls both refuse as Twilio does: a wrong account or token, a
        `To` that is not E.164, no `From`. Else (account sid, form, to, from)."""
        sid = request.match_info["sid"]
        if not self._authorised(request) or (self.account_sid and sid != self.account_sid):
            return _error(401, 20003, "Authenticate")
        form = await request.post()
        to, sender = str(form.get("To", "")), str(form.get("From", ""))
        if not E164.match(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender:
            return _error(400, no_sender_code, "A 'From' phone number is required.")
        return sid, form, to, sender

    async def _create_message(self, request: web.Request) -> web.Response:
        faults = self.faults
        if faults.delay_s:
            await asyncio.sleep(faults.delay_s)
        if faults.count > 0:
            faults.count -= 1
            return _error(faults.status, faults.code, "injected failure")
        checked = await self._checked(request, no_sender_code=21603)
        if isinstance(checked, web.Response):
            return checked
        sid, form, to, sender = checked
        body = str(form.get("Body", ""))
        if not body:
            return _error(400, 21602, "Message body is required.")
        now = datetime.now(UTC)
        message: dict[str, Any] = {
            "sid": "SM" + secrets.token_hex(16), "account_sid": sid, "to": to, "from": sender,
            "body": body, "status": "queued", "num_segments": str(-(-len(body) // GSM_SEGMENT_CHARS)),
            "direction": "outbound-api", "api_version": "2010-04-01",
            "date_created": format_datetime(now), "date_updated": format_datetime(now),
            "date_sent": None, "error_code": None, "error_message": None, "price": None,
            "price_unit": "USD", "messaging_service_sid": None, "num_media": "0",
            "status_callback": str(form.get("StatusCallback", "")) or None,
            "uri": f"/2010-04-01/Accounts/{sid}/Messages/SM.json", "subresource_uris": {},
        }
        self.store.save(message)
        return web.json_response(message, status=201)

    async def _create_call(self, request: web.Request) -> web.Response:
        checked = await self._checked(request, no_sender_code=21213)
        if isinstance(checked, web.Response):
            return checked
        sid, form, to, sender = checked
        twiml = str(form.get("Twiml", ""))
        if not twiml.lstrip().startswith("<"):
            return _error(400, 21205, "Twiml (or Url) is required.")
        now = format_datetime(datetime.now(UTC))
        call: dict[str, Any] = {
            "sid": "CA" + secrets.token_hex(16), "account_sid": sid, "to": to, "from": sender,
            "twiml": twiml, "status": "queued", "direction": "outbound-api", "api_version": "2010-04-01",
            "date_created": now, "date_updated": now, "uri": f"/2010-04-01/Accounts/{sid}/Calls/CA.json",
        }
        self.calls.save(call)
        return web.json_response(call, status=201)

    @staticmethod
    def key_press(call: dict[str, Any], digits: str, auth_token: str) -> tuple[str, dict[str, str], str]:
        """What Twilio posts when the person called presses `digits` in the call's <Gather>:
        the action URL, the form, and its X-Twilio-Signature."""
        from xml.etree import ElementTree

        from twilio.request_validator import RequestValidator

        # a test helper, on the TwiML our own voice channel sent this local endpoint
        gather = ElementTree.fromstring(call["twiml"]).find("Gather")  # noqa: S314
        if gather is None or not gather.get("action"):
            raise ValueError("this call asks for no key")
        url = str(gather.get("action"))
        form = {"CallSid": call["sid"], "AccountSid": call["account_sid"], "From": call["to"],
                "To": call["from"], "Digits": digits, "CallStatus": "in-progress"}
        return url, form, RequestValidator(auth_token).compute_signature(url, form)

    async def _list_messages(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, 20003, "Authenticate")
        return web.json_response({"messages": self.store.messages()})

    async def start(self) -> None:
        self._runner = web.AppRunner(self.application(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
