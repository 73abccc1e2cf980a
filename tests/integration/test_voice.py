"""The voice channel end to end: the real twilio client places a call on the local Twilio
endpoint, the call reads the alert and asks for a key, and the key press, posted and signed
as Twilio would, acknowledges the alert through the console as the person called."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit
from uuid import uuid4

import asyncpg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from citywatch.codecs import decode_event
from citywatch.console.app import create_app
from citywatch.devservers.twilio import LocalTwilioEndpoint
from citywatch.infra.process import free_port
from citywatch.settings import load_settings
from citywatch.topics import Topics, ensure_topics
from notifier.acklinks import AckLinks
from notifier.channels import DeliveryError
from notifier.events import AlertAck
from notifier.templates import render
from notifier.voice import VoiceChannel, VoiceSettings
from rules.events import Alert
from storage.writer import EventWriter
from tests.kafka_helpers import drain

pytestmark = pytest.mark.integration
SID, TOKEN = "AC" + "8" * 32, "voice-token-" + "v" * 20
ACK_SECRET = "ack-" + "s" * 40
PUBLIC = "https://console.city.example"
PHONE = "+447700900222"


def voice(base_url: str, token: str = TOKEN) -> VoiceChannel:
    return VoiceChannel(VoiceSettings(account_sid=SID, auth_token=SecretStr(token),
                                      from_number="+15005550006", api_base_url=base_url))


async def test_a_call_reads_the_alert_and_a_key_press_acknowledges_it(
    tmp_path: Path, bootstrap: str, dsn: str, pg_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = f"vc{uuid4().hex[:8]}"
    now = datetime.now(UTC)
    alert = Alert(source_id="cam-v", time=now, alert_id=uuid4(), rule_id=f"r-{run}",
                  title="Smoke at the depot", severity="critical", state="fired", group_key="cam-v",
                  started_at=now)
    await EventWriter(pg_pool).write([alert])
    link = AckLinks(PUBLIC, ACK_SECRET).link(str(alert.alert_id), "ana")
    endpoint = LocalTwilioEndpoint("127.0.0.1", free_port(), tmp_path / "sms.jsonl", SID, TOKEN)
    await endpoint.start()
    channel = voice(endpoint.base_url)
    try:
        call_sid = await channel.send(PHONE, render("voice", alert, ack_url=link))
        resolved = alert.model_copy(update={"state": "resolved", "resolved_at": now})
        await channel.send(PHONE, render("voice", resolved, ack_url=link))  # nothing left to take
        with pytest.raises(DeliveryError) as refused:
            await voice(endpoint.base_url, token="wrong-" + "t" * 20).send(PHONE, render("voice", alert))
    finally:
        await channel.close()
        await endpoint.stop()
    assert refused.value.permanent and "401" in str(refused.value)
    fired_call, resolved_call = endpoint.calls.messages()
    assert fired_call["sid"] == call_sid and fired_call["to"] == PHONE
    assert "Smoke at the depot" in fired_call["twiml"] and "Press 1 to acknowledge" in fired_call["twiml"]
    assert "<Gather" not in resolved_call["twiml"]  # a resolve only speaks

    monkeypatch.setenv("CITYWATCH_CHANNELS__VOICE__AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("CITYWATCH_CONSOLE__ACK_SECRET", ACK_SECRET)
    config = tmp_path / "citywatch.yaml"
    config.write_text(f"""
broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}}}
storage: {{dsn: "{dsn}"}}
channels:
  voice: {{account_sid: {SID}, from_number: "+15005550006"}}
recipients:
  ana: {{phone: "{PHONE}"}}
console: {{public_url: "{PUBLIC}"}}
""")
    await ensure_topics(bootstrap, Topics(run), partitions=1)
    url, form, signature = endpoint.key_press(fired_call, "1", TOKEN)
    parts = urlsplit(url)
    path = f"{parts.path}?{parts.query}"
    with TestClient(create_app(load_settings(config))) as console:
        forged = console.post(path, data=form, headers={"X-Twilio-Signature": "forged"})
        wrong_key = endpoint.key_press(fired_call, "2", TOKEN)
        other = console.post(path, data=wrong_key[1], headers={"X-Twilio-Signature": wrong_key[2]})
        pressed = console.post(path, data=form, headers={"X-Twilio-Signature": signature})
    assert forged.status_code == 403
    assert other.status_code == 200 and "Not acknowledged" in other.text
    assert pressed.status_code == 200 and "Acknowledged, ana" in pressed.text
    [ack] = [decode_event("acks", raw) for raw in await drain(bootstrap, f"{run}.acks")]
    assert isinstance(ack, AlertAck) and (ack.alert_id, ack.by, ack.via) == (alert.alert_id, "ana", "voice")
