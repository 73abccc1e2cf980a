"""Escalation in a running worker: nobody acknowledges, so level 2 hears about it; an
acknowledgement through the signed link in the email (served by the console) stops it,
and the console's API answers who is on call."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from fastapi.testclient import TestClient

from citywatch.console.app import create_app
from citywatch.devservers.smtp import LocalSmtpServer
from citywatch.infra.process import free_port
from citywatch.publisher import KafkaPublisher
from citywatch.settings import load_settings
from citywatch.topics import Topics, ensure_topics
from ingest.events import Reading
from tests.console_helpers import make_user, sign_in
from tests.worker_process import Worker, until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

RULE = """
id: smoke-{run}
title: Smoke reported
severity: critical
sources: {{ids: [aq-{run}, aq2-{run}]}}
condition: {{type: threshold, field: pm25, above: 50}}
route: night
"""


def config_text(tmp: Path, run: str, bootstrap: str, dsn: str, smtp_port: int) -> str:
    return f"""
broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}, app_id: {run}, partitions: 1}}
storage: {{dsn: "{dsn}", batch_window_s: 0.3}}
infra: {{state_dir: "{tmp / 'state'}"}}
rules: {{paths: ["{tmp / 'rules'}"], reload_every_s: 1, tick_every_s: 0.5}}
channels:
  email: {{host: 127.0.0.1, port: {smtp_port}, from_addr: citywatch@localhost}}
recipients:
  ana: {{email: ana@example.org}}
  lead: {{email: lead@example.org}}
notify:
  schedules:
    ops: {{rotation: {{users: [ana], start: 2026-01-01, timezone: Europe/London}}}}
  policies:
    night:
      steps:
        - {{notify: ["oncall:ops"], channels: [email], wait: 4}}
        - {{notify: ["person:lead"], channels: [email], wait: 600}}
console: {{public_url: "http://console.test"}}
"""


async def test_escalation_reaches_level_two_and_an_email_link_stops_it(
    tmp_path: Path, bootstrap: str, dsn: str, pg_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CITYWATCH_CONSOLE__ACK_SECRET", uuid4().hex)  # the worker signs, the console checks
    monkeypatch.setenv("CITYWATCH_CONSOLE__SESSION_SECRET", uuid4().hex)
    run = f"esc{uuid4().hex[:8]}"
    smtp = LocalSmtpServer("127.0.0.1", free_port(), tmp_path / "mail")
    smtp.start()
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "smoke.yaml").write_text(RULE.format(run=run))
    config = tmp_path / "citywatch.yaml"
    config.write_text(config_text(tmp_path, run, bootstrap, dsn, int(smtp.address.rsplit(":", 1)[1])))
    await ensure_topics(bootstrap, Topics(run), partitions=1)
    publisher = KafkaPublisher(bootstrap, Topics(run), 1 << 20)
    await publisher.start()
    worker = Worker(config, tmp_path / "worker.log")
    worker.start()

    def mails_to(address: str) -> list[dict[str, object]]:
        return [m for m in smtp.store.messages() if m["to"] == [address]]

    async def reading(source: str) -> None:
        event = Reading(source_id=source, time=datetime.now(UTC), values={"pm25": 90.0},
                        units={"pm25": "µg/m³"})
        await publisher.send("readings", source.encode(), event.to_json())

    try:
        await reading(f"aq-{run}")
        await until("ana's email (step 1)", lambda: asyncio.sleep(0, mails_to("ana@example.org")), worker)
        [lead_mail] = await until(
            "lead's email (step 2)", lambda: asyncio.sleep(0, mails_to("lead@example.org")), worker)
        assert "Smoke reported" in str(lead_mail["subject"])

        await reading(f"aq2-{run}")
        await until("ana's second email",
                    lambda: asyncio.sleep(0, len(mails_to("ana@example.org")) == 2), worker)
        second = mails_to("ana@example.org")[1]
        parsed = message_from_bytes((tmp_path / "mail" / str(second["file"])).read_bytes(), policy=default)
        body = parsed.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        link = re.search(r"http://console\.test(/ack/\S+)", text)
        assert link is not None, text
        await make_user(pg_pool, f"op-{run}", "operator")
        alert_id = link.group(1).split("/ack/", 1)[1].split("?", 1)[0]
        # a console started just now knows the alert from the database, not yet from its feed
        await until("the alert stored", lambda: pg_pool.fetchval(
            "SELECT count(*) > 0 FROM alerts WHERE alert_id = $1::uuid", alert_id), worker)
        with TestClient(create_app(load_settings(config))) as console:
            assert console.get(link.group(1)).status_code == 200  # the link needs no session
            assert console.get(link.group(1).replace("sig=", "sig=0")).status_code == 403
            csrf = sign_in(console, f"op-{run}")
            assert console.get("/api/oncall").json() == {"ops": "ana"}
            missing = console.post(f"/api/alerts/{uuid4()}/ack", json={}, headers={"X-CSRF-Token": csrf})
            assert missing.status_code == 404
        await until("the acknowledgement stored", lambda: pg_pool.fetchval(
            "SELECT count(*) FROM alert_acks WHERE by_whom = 'ana' AND via = 'email' AND rule_id = $1",
            f"smoke-{run}"), worker)
        await asyncio.sleep(7)  # well past step 1's wait
        assert len(mails_to("lead@example.org")) == 1  # the acknowledged alert did not escalate
    finally:
        worker.stop()
        await publisher.stop()
        smtp.stop()
