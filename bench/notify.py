"""Notification latency: from an alert published on `alerts` to the email accepted by the SMTP
server and the SMS accepted by the Twilio-compatible endpoint, through a real worker.

Starts a Tansu broker and TimescaleDB (local, free ports), the dev SMTP server and Twilio
endpoint in this process, and a worker subprocess. Publishes `--alerts` alerts at `--rate`
per second, each to one recipient by email and SMS. Baseline in the same run: the bare
channels (the same email and SMS sent directly, without Kafka, the worker or the log).
Prints one JSON object with p50/p99 latencies in ms (goal: p99 <= 1000 ms on loopback).

    .venv/bin/python -m bench.notify [--alerts 100] [--rate 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import numpy as np
from pydantic import SecretStr

from bench.worker_process import start_worker, stop_worker
from citywatch.devservers.smtp import LocalSmtpServer
from citywatch.devservers.twilio import LocalTwilioEndpoint
from citywatch.infra.manager import LocalInfra
from citywatch.infra.process import free_port
from citywatch.publisher import KafkaPublisher
from citywatch.topics import Topics, ensure_topics
from notifier.channels import Message
from notifier.email import EmailChannel, SmtpSettings
from notifier.sms import SmsChannel, TwilioSettings
from rules.events import Alert
from rules.model import NotifyTarget

SID, TOKEN = "AC" + "5" * 32, "bench-token"


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "n": 0}
    array = np.array(samples) * 1000
    return {"p50_ms": round(float(np.percentile(array, 50)), 1),
            "p99_ms": round(float(np.percentile(array, 99)), 1), "n": len(samples)}


def config(state: Path, run: str, bootstrap: str, dsn: str, smtp_port: int, twilio_url: str) -> str:
    return f"""
broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}, app_id: {run}, partitions: 1}}
storage: {{dsn: "{dsn}"}}
infra: {{state_dir: "{state}"}}
rules: {{paths: ["{state / 'no-rules'}"]}}
channels:
  email: {{host: 127.0.0.1, port: {smtp_port}, from_addr: citywatch@localhost}}
  sms: {{account_sid: {SID}, from_number: "+15005550006", api_base_url: "{twilio_url}", segments_per_s: 1000}}
recipients:
  ops: {{email: ops@example.org, phone: "+447700900123"}}
worker: {{run_sources: false, loglevel: warn}}
"""


async def bare_channels(smtp: LocalSmtpServer, twilio: LocalTwilioEndpoint, count: int) -> dict[str, object]:
    email = EmailChannel(SmtpSettings(host="127.0.0.1", port=int(smtp.address.rsplit(":", 1)[1]),
                                      from_addr="citywatch@localhost"))
    sms = SmsChannel(TwilioSettings(account_sid=SID, auth_token=SecretStr(TOKEN), from_number="+15005550006",
                                    api_base_url=twilio.base_url, segments_per_s=1000))
    email_times, sms_times = [], []
    try:
        for i in range(count):
            started = time.perf_counter()
            await email.send("ops@example.org", Message(f"baseline {i}", "text"))
            email_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            await sms.send("+447700900123", Message("", f"baseline {i}"))
            sms_times.append(time.perf_counter() - started)
    finally:
        await sms.close()
    return {"email": percentiles(email_times), "sms": percentiles(sms_times)}


async def run(count: int, rate: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="cw-bench-notify-") as folder:
        state = Path(folder)
        (state / "no-rules").mkdir()
        infra = LocalInfra.create(state / "infra", "127.0.0.1", free_port(), free_port())
        infra.up()
        smtp = LocalSmtpServer("127.0.0.1", free_port(), state / "mail")
        twilio = LocalTwilioEndpoint("127.0.0.1", free_port(), state / "sms.jsonl", SID, TOKEN)
        smtp.start()
        await twilio.start()
        worker = None
        try:
            baseline = await bare_channels(smtp, twilio, min(count, 50))
            smtp.store.index.unlink(missing_ok=True)
            twilio.store.path.unlink(missing_ok=True)
            bootstrap, run_id = f"127.0.0.1:{infra.broker.port}", f"bench{uuid4().hex[:6]}"
            smtp_port = int(smtp.address.rsplit(":", 1)[1])
            (state / "citywatch.yaml").write_text(
                config(state, run_id, bootstrap, infra.database.dsn, smtp_port, twilio.base_url))
            await ensure_topics(bootstrap, Topics(run_id), partitions=1)
            env = {**os.environ, "CITYWATCH_CHANNELS__SMS__AUTH_TOKEN": TOKEN}
            worker = start_worker(state / "citywatch.yaml", state / "worker.log", env)
            publisher = KafkaPublisher(bootstrap, Topics(run_id), 1 << 20)
            await publisher.start()
            target = NotifyTarget.model_validate({"recipient": "ops", "channels": ["email", "sms"]})
            await warm_up(publisher, target, smtp)
            sent: dict[str, datetime] = {}
            for i in range(count):
                now = datetime.now(UTC)
                title = f"Bench alert {i:05d}"
                alert = Alert(source_id="cam-bench", time=now, alert_id=uuid4(), rule_id="bench", title=title,
                              severity="warning", state="fired", group_key=f"cam-{i}", started_at=now,
                              notify=[target])
                sent[title] = now
                await publisher.send("alerts", alert.kafka_key.encode(), alert.to_json())
                await asyncio.sleep(1 / rate)
            await poll(lambda: min(len(smtp.store.messages()), len(twilio.store.messages())) >= count, 60)
            await publisher.stop()
            email_lat = [(datetime.fromisoformat(m["received_at"]) - sent[title]).total_seconds()
                         for m in smtp.store.messages()
                         if (title := m["subject"].split("] ")[-1][:17]) in sent]
            sms_lat = [(datetime.fromisoformat(m["received_at"]) - sent[title]).total_seconds()
                       for m in twilio.store.messages()
                       if (title := m["body"].split(": ", 1)[-1][:17]) in sent]
            return {
                "benchmark": "notify", "cpu_count": os.cpu_count(), "alerts": count, "rate_per_s": rate,
                "baseline_bare_channels": baseline,
                "pipeline_alert_to_accepted": {"email": percentiles(email_lat), "sms": percentiles(sms_lat)},
                "goal_p99_ms": 1000,
            }
        finally:
            if worker is not None:
                stop_worker(worker)
            await twilio.stop()
            smtp.stop()
            infra.down()


async def warm_up(publisher: KafkaPublisher, target: NotifyTarget, smtp: LocalSmtpServer) -> None:
    """One alert through the whole path first: the worker loads, joins and connects."""
    now = datetime.now(UTC)
    alert = Alert(source_id="cam-bench", time=now, alert_id=uuid4(), rule_id="bench", title="warm-up",
                  severity="info", state="fired", group_key="warm-up", started_at=now, notify=[target])
    await publisher.send("alerts", alert.kafka_key.encode(), alert.to_json())
    await poll(lambda: bool(smtp.store.messages()), 120)


async def poll(done: Callable[[], bool], timeout_s: float) -> None:
    """Until `done()` or the timeout: the servers write to files from other threads."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not done():  # noqa: ASYNC110 - polling files, not a task
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100)
    parser.add_argument("--rate", type=float, default=5.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.alerts, args.rate))))
