"""Email through a real SMTP server, SMS through the real twilio client to the local endpoint."""

from pathlib import Path

import pytest

from citywatch.devservers.smtp import LocalSmtpServer
from citywatch.devservers.twilio import LocalTwilioEndpoint
from citywatch.infra.process import free_port
from notifier.channels import DeliveryError, Message
from notifier.email import EmailChannel, SmtpConfig
from notifier.sms import SmsChannel, TwilioConfig

pytestmark = pytest.mark.integration
SID = "AC" + "1" * 32


async def test_email_reaches_the_smtp_server(tmp_path: Path) -> None:
    server = LocalSmtpServer("127.0.0.1", free_port(), tmp_path / "mail")
    server.start()
    try:
        channel = EmailChannel(SmtpConfig(host="127.0.0.1", port=int(server.address.rsplit(":", 1)[1]),
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
        good = SmsChannel(TwilioConfig(SID, "right-token", "+15005550006", api_base_url=endpoint.base_url))
        sid = await good.send("+447700900123", Message("", "CRITICAL: NO2 high"))
        bad_token = SmsChannel(TwilioConfig(SID, "wrong", "+15005550006", api_base_url=endpoint.base_url))
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
