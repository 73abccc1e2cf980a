"""Twilio's webhooks on the console, signed as Twilio signs them: delivery receipts become
events, an 'ACK' reply acknowledges the last alert sent to that phone; forgeries are refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from citywatch.codecs import decode_event
from citywatch.console.app import create_app
from citywatch.settings import load_settings
from citywatch.topics import Topics, ensure_topics
from notifier.events import AlertAck, DeliveryReceipt, Notification
from rules.events import Alert
from storage.writer import EventWriter
from tests.kafka_helpers import drain

pytestmark = pytest.mark.integration
TOKEN = "webhook-token"
PUBLIC = "https://console.city.example"


async def test_receipts_and_sms_replies(
    tmp_path: Path, bootstrap: str, dsn: str, pg_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CITYWATCH_CHANNELS__SMS__AUTH_TOKEN", TOKEN)
    run = f"tw{uuid4().hex[:8]}"
    config = tmp_path / "citywatch.yaml"
    config.write_text(f"""
broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}}}
storage: {{dsn: "{dsn}"}}
channels:
  sms: {{account_sid: {"AC" + "7" * 32}, from_number: "+15005550006"}}
recipients:
  ana: {{phone: "+447700900111"}}
console: {{public_url: "{PUBLIC}"}}
""")
    await ensure_topics(bootstrap, Topics(run), partitions=1)
    now = datetime.now(UTC)
    alert = Alert(source_id="cam-tw", time=now, alert_id=uuid4(), rule_id=f"r-{run}", title="Fire",
                  severity="critical", state="fired", group_key="cam-tw", started_at=now)
    sent = Notification(source_id="cam-tw", time=now, alert_id=alert.alert_id, alert_state="fired",
                        rule_id=alert.rule_id, recipient="ana", channel="sms", address="+44***111",
                        status="sent", attempts=1)
    await EventWriter(pg_pool).write([alert, sent])
    signer = RequestValidator(TOKEN)

    def signed(path: str, form: dict[str, str]) -> dict[str, str]:
        return {"X-Twilio-Signature": signer.compute_signature(PUBLIC + path, form)}

    receipt_form = {"MessageSid": "SM123", "MessageStatus": "delivered", "To": "+447700900111"}
    reply_form = {"From": "+447700900111", "Body": "ack", "To": "+15005550006"}
    with TestClient(create_app(load_settings(config))) as console:
        assert console.post("/twilio/status", data=receipt_form,
                            headers={"X-Twilio-Signature": "forged"}).status_code == 403
        assert console.post("/twilio/status", data=receipt_form,
                            headers=signed("/twilio/status", receipt_form)).status_code == 200
        inbound = "/twilio/inbound"
        answer = console.post(inbound, data=reply_form, headers=signed(inbound, reply_form))
        stranger = {**reply_form, "From": "+447700900999"}
        unknown = console.post(inbound, data=stranger, headers=signed(inbound, stranger))
    assert answer.status_code == 200 and "Acknowledged, ana" in answer.text
    assert "not on the CityWatch rota" in unknown.text
    [receipt] = [decode_event("notifications", raw) for raw in await drain(bootstrap, f"{run}.notifications")]
    assert isinstance(receipt, DeliveryReceipt)
    assert (receipt.provider_id, receipt.status) == ("SM123", "delivered")
    [ack] = [decode_event("acks", raw) for raw in await drain(bootstrap, f"{run}.acks")]
    assert isinstance(ack, AlertAck) and (ack.alert_id, ack.by, ack.via) == (alert.alert_id, "ana", "sms")
