"""Delivery guarantees against real protocol peers (aiosmtpd, the real twilio client and the
local Twilio endpoint) and the notification log in the real TimescaleDB: an outage outlived,
provider errors retried or not, and no duplicate after a crash at each point."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from pydantic import SecretStr

from citywatch.devservers.smtp import LocalSmtpServer
from citywatch.devservers.twilio import LocalTwilioEndpoint
from citywatch.infra.process import free_port
from notifier.channels import Message
from notifier.dispatcher import Dispatcher, RetryPolicy
from notifier.email import EmailChannel, SmtpSettings
from notifier.log import OutboxPolicy
from notifier.people import Person
from notifier.sms import SmsChannel, TwilioSettings
from rules.events import Alert
from rules.model import NotifyTarget
from storage.notification_log import PgNotificationLog

pytestmark = pytest.mark.integration

SID, TOKEN = "AC" + "3" * 32, "guarantees-token"
PEOPLE = {"ops": Person(email="ops@example.org", phone="+447700900123")}
QUICK = RetryPolicy(attempts=2, base_delay_s=0.05, max_delay_s=0.1)


def alert(*channels: str) -> Alert:
    now = datetime.now(UTC)
    return Alert(source_id="cam-1", time=now, alert_id=uuid4(), rule_id="fire", title="Fire",
                 severity="critical", state="fired", group_key="cam-1", started_at=now,
                 notify=[NotifyTarget.model_validate({"recipient": "ops", "channels": list(channels)})])


@pytest.fixture
async def log(private_pg_pool: asyncpg.Pool) -> AsyncIterator[PgNotificationLog]:
    """The outbox sweep sees every pending row: a database of its own keeps other tests' out."""
    yield PgNotificationLog(private_pg_pool)


@pytest.fixture
def smtp(tmp_path: Path) -> LocalSmtpServer:
    return LocalSmtpServer("127.0.0.1", free_port(), tmp_path / "mail")


def email_channel(server: LocalSmtpServer) -> EmailChannel:
    return EmailChannel(SmtpSettings(host="127.0.0.1", port=int(server.address.rsplit(":", 1)[1]),
                                     from_addr="citywatch@localhost", timeout_s=2))


async def test_email_is_delivered_after_a_60_second_outage(
    smtp: LocalSmtpServer, log: PgNotificationLog
) -> None:
    dispatcher = Dispatcher({"email": email_channel(smtp)}, PEOPLE, log, QUICK,
                            outbox=OutboxPolicy(retry_every_s=2, max_age_s=600, max_attempts=100))
    the_alert = alert("email")
    started = time.monotonic()
    [first] = await dispatcher.dispatch(the_alert)  # the SMTP server is down
    assert first.status == "failed"
    delivered_after = None
    try:
        while time.monotonic() - started < 120:
            if delivered_after is None and time.monotonic() - started >= 60 and not smtp.store.messages():
                smtp.start()  # the outage ends after a minute
            outcomes = await dispatcher.retry_due()
            if any(o.status == "sent" for o in outcomes):
                delivered_after = time.monotonic() - started
                break
            await asyncio.sleep(1)
        await asyncio.sleep(3)
        assert await dispatcher.retry_due() == []  # nothing left to retry
    finally:
        smtp.stop()
    assert delivered_after is not None and delivered_after >= 60
    assert len(smtp.store.messages()) == 1


async def test_provider_errors_and_timeouts_are_retried_but_permanent_errors_are_not(
    tmp_path: Path, log: PgNotificationLog,
) -> None:
    endpoint = LocalTwilioEndpoint("127.0.0.1", free_port(), tmp_path / "sms.jsonl", SID, TOKEN)
    await endpoint.start()
    sms = SmsChannel(TwilioSettings(account_sid=SID, auth_token=SecretStr(TOKEN), from_number="+15005550006",
                                    api_base_url=endpoint.base_url, timeout_s=1, segments_per_s=100))
    retry = RetryPolicy(attempts=4, base_delay_s=0.05, max_delay_s=0.1)
    dispatcher = Dispatcher({"sms": sms}, PEOPLE, log, retry)
    try:
        endpoint.faults.count, endpoint.faults.status = 2, 503
        [after_5xx] = await dispatcher.dispatch(alert("sms"))
        endpoint.faults.count, endpoint.faults.status, endpoint.faults.delay_s = 1, 503, 3.0  # a hang
        [after_timeout] = await dispatcher.dispatch(alert("sms"))
        endpoint.faults.delay_s = 0
        endpoint.faults.count, endpoint.faults.status, endpoint.faults.code = 5, 400, 21211
        [invalid] = await dispatcher.dispatch(alert("sms"))
        sweeper = Dispatcher({"sms": sms}, PEOPLE, log, outbox=OutboxPolicy(retry_every_s=0))
        retried = await sweeper.retry_due()
    finally:
        await sms.close()
        await endpoint.stop()
    assert (after_5xx.status, after_5xx.attempts) == ("sent", 3)
    assert (after_timeout.status, after_timeout.attempts) == ("sent", 2)
    assert (invalid.status, invalid.attempts) == ("failed", 1) and "21211" in (invalid.error or "")
    assert retried == []  # a permanent failure is reported, not retried
    assert len(endpoint.store.messages()) == 2


class Crash(BaseException):
    """A worker killed at this point (BaseException: nothing in the dispatcher catches it)."""


class CrashingEmail:
    """The real email channel, with the process dying before or after the provider took it."""

    name = "email"

    def __init__(self, real: EmailChannel, when: str) -> None:
        self.real, self.when = real, when
        self.form = real.form

    async def send(self, address: str, message: Message) -> str:
        if self.when == "before_send":
            raise Crash
        provider_id = await self.real.send(address, message)
        if self.when == "after_send":
            raise Crash  # the provider has it; the log does not know yet
        return provider_id


@pytest.mark.parametrize(("crash_point", "expected_mails"), [
    ("before_send", 1),   # claimed, never sent: the restart sends it once
    ("after_send", 2),    # sent, not marked: at most one more after the restart
    ("after_marked", 1),  # sent and marked: never again
])
async def test_no_duplicate_after_a_crash_at_each_point(
    smtp: LocalSmtpServer, log: PgNotificationLog, crash_point: str, expected_mails: int,
) -> None:
    smtp.start()
    try:
        real = email_channel(smtp)
        the_alert = alert("email")
        if crash_point == "after_marked":
            await Dispatcher({"email": real}, PEOPLE, log, QUICK).dispatch(the_alert)
        else:
            with pytest.raises(Crash):
                crashing = Dispatcher({"email": CrashingEmail(real, crash_point)}, PEOPLE, log, QUICK)
                await crashing.dispatch(the_alert)
        # the restarted worker: Kafka redelivers the alert (its offset was not committed) ...
        restarted = Dispatcher({"email": real}, PEOPLE, log, QUICK,
                               outbox=OutboxPolicy(retry_every_s=0, stale_claim_s=0))
        await restarted.dispatch(the_alert)
        await restarted.dispatch(the_alert)  # ... even twice
        await asyncio.sleep(0.1)
        await restarted.retry_due()  # and the outbox sweeps
    finally:
        smtp.stop()
    assert len(smtp.store.messages()) == expected_mails
