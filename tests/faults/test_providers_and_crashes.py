"""The SMTP server and the Twilio endpoint down for a minute, and a worker killed with -9
in the middle of an escalation: every alert still reaches everyone it should, once."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import asyncpg
import pytest

from citywatch.devservers.smtp import LocalSmtpServer
from citywatch.devservers.twilio import LocalTwilioEndpoint
from citywatch.infra.process import free_port
from citywatch.publisher import KafkaPublisher
from tests.faults.conftest import count, now, reading, smtp_port, worker_config, write_rule
from tests.worker_process import Worker, until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

OUTAGE_S = float(os.environ.get("FAULTS_PROVIDER_OUTAGE_S", "60"))
SID, TOKEN = "AC" + "6" * 32, "faults-" + "9" * 32
ALERTS = 5


async def test_alerts_raised_while_smtp_and_twilio_are_down_arrive_once_when_they_return(
    tmp_path: Path, bootstrap: str, dsn: str, run: str, publisher: KafkaPublisher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CITYWATCH_CHANNELS__SMS__AUTH_TOKEN", TOKEN)
    smtp_at, twilio_at = free_port(), free_port()
    twilio = LocalTwilioEndpoint("127.0.0.1", twilio_at, tmp_path / "sms.jsonl", SID, TOKEN)
    sources = [f"aq{i}-{run}" for i in range(ALERTS)]
    write_rule(tmp_path, run, sources, channels="email, sms")
    config = worker_config(
        tmp_path, run, bootstrap, dsn, smtp_at,
        sms=f'sms: {{account_sid: {SID}, from_number: "+15005550006", api_base_url: "{twilio.base_url}"}}',
        recipients='ops: {email: ops@example.org, phone: "+447700900123"}',
        notify="outbox_max_attempts: 1000")
    worker = Worker(config, tmp_path / "worker.log")
    worker.start()
    smtp = LocalSmtpServer("127.0.0.1", smtp_at, tmp_path / "mail")
    try:
        for source in sources:  # both providers are down from the start
            await publisher.send("readings", source.encode(), reading(source, now(), 80.0).to_json())
        await until("the deliveries failing", lambda: _log_has(worker, "failed (attempt"), worker)
        down_since = time.monotonic()
        while time.monotonic() - down_since < OUTAGE_S:  # the outage lasts; the outbox keeps trying
            worker.check_alive()
            await asyncio.sleep(1)
        smtp.start()
        await twilio.start()
        await until(f"{ALERTS} emails and {ALERTS} SMS", lambda: _arrived(smtp, twilio), worker)
        await until("the sent notifications stored", lambda: _sent_rows(dsn, f"pm-{run}"), worker)
    finally:
        worker.stop()
        smtp.stop()
        await twilio.stop()
    assert len(smtp.store.messages()) == ALERTS  # and nothing twice
    assert sorted(m["to"] for m in twilio.store.messages()) == ["+447700900123"] * ALERTS


async def test_a_worker_killed_mid_escalation_escalates_once_and_repeats_nothing(
    tmp_path: Path, bootstrap: str, dsn: str, pg_pool: asyncpg.Pool, run: str, smtp: LocalSmtpServer,
    publisher: KafkaPublisher,
) -> None:
    source = f"aq-{run}"
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "pm.yaml").write_text(f"""
id: pm-{run}
title: PM2.5 high
severity: critical
sources: {{ids: [{source}]}}
condition: {{type: threshold, field: pm25, above: 50}}
route: night
""")
    config = worker_config(
        tmp_path, run, bootstrap, dsn, smtp_port(smtp),
        recipients="ops: {email: ops@example.org}, lead: {email: lead@example.org}",
        notify='policies: {night: {steps: [{notify: ["person:ops"], channels: [email], wait: 6},'
               ' {notify: ["person:lead"], channels: [email], wait: 600}]}}')
    worker = Worker(config, tmp_path / "worker.log")
    worker.start()
    try:
        await publisher.send("readings", source.encode(), reading(source, now(), 80.0).to_json())
        await until("step 1: the email to ops", lambda: _mails_to(smtp, "ops@example.org", 1), worker)
        # once step 1 is recorded as sent (a kill between sending and recording may send it once
        # more, as documented), the worker dies between the steps
        await until("step 1 recorded", lambda: _at_least(
            dsn, f"SELECT count(*) FROM notifications WHERE rule_id = 'pm-{run}' AND status = 'sent'", 1),
            worker)
        worker.kill()  # -9, between the steps
        worker.start()
        await until("step 2: the email to lead", lambda: _mails_to(smtp, "lead@example.org", 1), worker)
        await until("both recorded", lambda: _at_least(
            dsn, f"SELECT count(*) FROM notifications WHERE rule_id = 'pm-{run}' AND status = 'sent'", 2),
            worker)
    finally:
        worker.stop()
    recipients = sorted(r for m in smtp.store.messages() for r in m["to"])
    assert recipients == ["lead@example.org", "ops@example.org"]  # each step once, none repeated


async def _log_has(worker: Worker, text: str) -> bool:
    return text in worker.log.read_text()


async def _arrived(smtp: LocalSmtpServer, twilio: LocalTwilioEndpoint) -> bool:
    return len(smtp.store.messages()) >= ALERTS and len(twilio.store.messages()) >= ALERTS


async def _sent_rows(dsn: str, rule_id: str) -> bool:
    sql = "SELECT count(*) FROM notifications WHERE status = 'sent' AND rule_id = $1"
    found = await count(dsn, sql, rule_id)
    return found >= 2 * ALERTS


async def _mails_to(smtp: LocalSmtpServer, address: str, wanted: int) -> bool:
    return sum(address in m["to"] for m in smtp.store.messages()) >= wanted


async def _at_least(dsn: str, sql: str, wanted: int) -> bool:
    return await count(dsn, sql) >= wanted
