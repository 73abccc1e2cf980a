"""Email through a real SMTP server, SMS through the real twilio client to the local endpoint."""

from pathlib import Path

import pytest
from pydantic import SecretStr

from citywatch.devservers.smtp import LocalSmtpServer
from citywatch.devservers.twilio import LocalTwilioEndpoint
from citywatch.infra.process import free_port
from notifier.channels import DeliveryError, Message
from notifier.email import EmailChannel, SmtpSettings
from notifier.sms import SmsChannel, TwilioSettings
from notifier.webhook import WebhookSettings

pytestmark = pytest.mark.integration
SID = "AC" + "1" * 32
HOOK_KEY = "hook-" + "k" * 32


def twilio(base_url: str, token: str) -> TwilioSettings:
    return TwilioSettings(account_sid=SID, auth_token=SecretStr(token), from_number="+15005550006",
                          api_base_url=base_url)


async def test_email_reaches_the_smtp_server(tmp_path: Path) -> None:
    server = LocalSmtpServer("127.0.0.1", free_port(), tmp_path / "mail")
    server.start()
    try:
        channel = EmailChannel(SmtpSettings(host="127.0.0.1", port=int(server.address.rsplit(":", 1)[1]),
                                            from_addr="citywatch@localhost"))
        message_id = await channel.send("ops@example.org", Message("Crowd forming", "3 persons at cam-1"))
    finally:
        server.stop()
    [mail] = server.store.messages()
    assert mail["to"] == ["ops@example.org"] and mail["subject"] == "Crowd forming"
    assert mail["message_id"] == message_id
    assert "3 persons at cam-1" in (tmp_path / "mail" / mail["file"]).read_text()


async def test_sms_goes_through_the_real_twilio_client(tmp_path: Path) -> None:
    endpoint = LocalTwilioEndpoint("127.0.0.1", free_port(), tmp_path / "sms.jsonl", SID, "right-token")
    await endpoint.start()
    try:
        good = SmsChannel(twilio(endpoint.base_url, "right-token"))
        sid = await good.send("+447700900123", Message("", "CRITICAL: NO2 high"))
        bad_token = SmsChannel(twilio(endpoint.base_url, "wrong"))
        with pytest.raises(DeliveryError) as unauthorised:
            await bad_token.send("+447700900123", Message("", "x"))
        with pytest.raises(DeliveryError) as bad_number:
            await good.send("12345", Message("", "x"))
    finally:
        await good.close()
        await bad_token.close()
        await endpoint.stop()
    [sms] = endpoint.store.messages()
    assert (sms["sid"], sms["to"], sms["from"], sms["body"]) == (sid, "+447700900123", "+15005550006",
                                                                 "CRITICAL: NO2 high")
    assert unauthorised.value.permanent and "20003" in str(unauthorised.value)
    assert bad_number.value.permanent and "21211" in str(bad_number.value)
    assert "right-token" not in str(unauthorised.value)


async def test_email_html_inline_snapshot_and_thread_through_real_smtp(tmp_path: Path, bus_jpg: Path) -> None:
    from datetime import UTC, datetime
    from email import message_from_bytes
    from email.policy import default as default_policy
    from uuid import uuid4

    from notifier.templates import render
    from rules.events import Alert, Evidence

    server = LocalSmtpServer("127.0.0.1", free_port(), tmp_path / "mail")
    server.start()
    now = datetime.now(UTC)
    fired = Alert(source_id="cam-1", time=now, alert_id=uuid4(), rule_id="crowd", title="Crowd",
                  severity="warning", state="fired", group_key="cam-1", started_at=now,
                  evidence=Evidence(values={"count": 4}, snapshot=str(bus_jpg)))
    resolved = fired.model_copy(update={"state": "resolved", "resolved_at": now})
    try:
        channel = EmailChannel(SmtpSettings(host="127.0.0.1", port=int(server.address.rsplit(":", 1)[1]),
                                            from_addr="citywatch@city.example"))
        first_id = await channel.send("ops@example.org", render("email", fired))
        await channel.send("ops@example.org", render("email", resolved))
    finally:
        server.stop()
    first, second = server.store.messages()
    assert first_id == f"<alert-{fired.alert_id}@city.example>" == first["message_id"]
    parsed = message_from_bytes((tmp_path / "mail" / second["file"]).read_bytes(), policy=default_policy)
    assert parsed["In-Reply-To"] == first_id and parsed["References"] == first_id
    original = message_from_bytes((tmp_path / "mail" / first["file"]).read_bytes(), policy=default_policy)
    types = [part.get_content_type() for part in original.walk()]
    assert {"text/plain", "text/html", "image/jpeg"} <= set(types)
    image = next(part for part in original.walk() if part.get_content_type() == "image/jpeg")
    assert image["Content-ID"] == "<snapshot>" and image.get_content() == bus_jpg.read_bytes()  # noqa: ASYNC240


async def test_webhook_posts_signed_json_to_a_real_http_server() -> None:
    from aiohttp import web

    from notifier.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookChannel, verify

    received: list[tuple[bytes, bool]] = []
    status = {"code": 200}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        ok = verify(HOOK_KEY, request.headers[TIMESTAMP_HEADER], body, request.headers[SIGNATURE_HEADER])
        received.append((body, ok))
        return web.Response(status=status["code"], headers={"X-Request-Id": "r-1"})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    channel = WebhookChannel(WebhookSettings(secret=SecretStr(HOOK_KEY)))
    try:
        provider_id = await channel.send(f"http://127.0.0.1:{port}/hook", Message("s", "t", data={"id": 7}))
        status["code"] = 503
        with pytest.raises(DeliveryError) as unavailable:
            await channel.send(f"http://127.0.0.1:{port}/hook", Message("s", "t"))
        status["code"] = 410
        with pytest.raises(DeliveryError) as gone:
            await channel.send(f"http://127.0.0.1:{port}/hook", Message("s", "t"))
    finally:
        await channel.close()
        await runner.cleanup()
    assert provider_id == "r-1" and received[0][1] and b'"id": 7' in received[0][0]
    assert not unavailable.value.permanent and gone.value.permanent
