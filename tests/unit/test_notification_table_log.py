"""The notification log in tables (the worker's): dedup, outbox, ownership, mirror, pruning."""

from uuid import uuid4

import pytest

from notifier.channels import Message
from notifier.email import EmailChannel, SmtpSettings, header_value
from notifier.log import DeliveryKey, Entry, MirroredNotificationLog, OutboxPolicy, TableNotificationLog


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def key(recipient: str = "ops") -> DeliveryKey:
    return DeliveryKey(uuid4(), "fired", recipient, "sms")


async def test_sent_is_never_sent_again_and_a_crash_costs_at_most_one_more() -> None:
    log = TableNotificationLog()
    k = key()
    assert (await log.claim(k, 3, {"a": 1}, 0, "rule|cam-1")).send
    # a crash between claim and send: the redelivered alert claims once more
    second = await log.claim(k, 3, {"a": 1}, 0, "rule|cam-1")
    assert second.send and second.attempt == 2
    await log.mark_sent(k, "SM1")
    again = await log.claim(k, 3, {"a": 1}, 0, "rule|cam-1")
    assert not again.send and again.reason == "already sent"
    assert log.outbox == {}  # finished deliveries leave the outbox


async def test_the_outbox_retries_failed_deliveries_of_its_own_partition_leased() -> None:
    clock = Clock()
    log = TableNotificationLog(clock=clock)
    mine, theirs = key("a"), key("b")
    for k, src in ((mine, "fire|cam-1"), (theirs, "fire|cam-2")):
        await log.claim(k, 3, {"alert": src}, 0, src)
        await log.mark_failed(k, "provider down", permanent=False, retry_in_s=10)
    policy = OutboxPolicy(retry_every_s=10)
    assert await log.due_retries(policy, owns=lambda src: src == "fire|cam-1") == []  # not due yet
    clock.now += 11
    due = await log.due_retries(policy, owns=lambda src: src == "fire|cam-1")
    assert [(p.key, p.alert) for p in due] == [(mine, {"alert": "fire|cam-1"})]
    assert await log.due_retries(policy, owns=lambda src: src == "fire|cam-1") == []  # leased
    await log.mark_failed(mine, "still down", permanent=True)
    clock.now += 11
    assert await log.due_retries(policy, owns=lambda src: src == "fire|cam-1") == []
    assert (await log.claim(mine, 30)).reason == "already failed_permanent"


async def test_a_stale_claim_is_retried_and_old_entries_expire() -> None:
    clock = Clock()
    log = TableNotificationLog(clock=clock)
    k = key()
    await log.claim(k, 3, {"x": 1}, 0, "r|s")  # and the worker died before sending
    policy = OutboxPolicy(stale_claim_s=60, max_age_s=3600)
    clock.now += 61
    assert [p.key for p in await log.due_retries(policy)] == [k]
    clock.now += 3600
    assert await log.due_retries(policy) == []
    assert log.outbox == {} and (log.entry(k) or {})["status"] == "expired"


async def test_changes_wait_for_the_mirror_and_are_copied_once_it_is_up() -> None:
    class Mirror:
        def __init__(self) -> None:
            self.up = False
            self.rows: dict[DeliveryKey, Entry] = {}

        async def upsert(self, entries: list[tuple[DeliveryKey, Entry]]) -> None:
            if not self.up:
                raise ConnectionRefusedError(111, "the database is down")
            self.rows.update(entries)

    log, mirror = MirroredNotificationLog(), Mirror()
    keys = [key(f"r{i}") for i in range(3)]
    for k in keys:
        await log.claim(k, 3, {"k": str(k)}, 0, "r|s")
        await log.mark_sent(k, "SM")
    with pytest.raises(ConnectionRefusedError):
        await log.flush(mirror)
    assert len(log.unmirrored) == 3  # one per delivery: the newest state
    mirror.up = True
    assert await log.flush(mirror, batch=2) == 3
    assert {k: e["status"] for k, e in mirror.rows.items()} == dict.fromkeys(keys, "sent")
    assert log.unmirrored == {}


async def test_finished_deliveries_are_forgotten_after_the_retention() -> None:
    clock = Clock()
    log = TableNotificationLog(clock=clock, retention_s=100)
    old, open_ = key("old"), key("open")
    await log.claim(old, 3, {}, 0, "r|s")
    await log.mark_sent(old, "SM")
    await log.claim(open_, 3, {"x": 1}, 0, "r|s")
    await log.mark_failed(open_, "down", permanent=False)
    clock.now += 101
    assert log.prune() == 1
    assert log.entry(old) is None and log.entry(open_) is not None


def test_email_headers_are_sanitised_and_carry_date_and_message_id() -> None:
    channel = EmailChannel(SmtpSettings(host="127.0.0.1", port=25, from_addr="cw@example.org"))
    subject = "Fire\r\nBcc: x@evil\x00"
    email, message_id = channel._build("ops@example.org", Message(subject=subject, text="t"))
    assert email["Subject"] == "Fire Bcc: x@evil"
    assert email["Bcc"] is None
    assert email["Date"] and email["Message-ID"] == message_id
    assert len(header_value("x" * 1000)) == 250
    with pytest.raises(ValueError, match="control characters"):
        channel._build("ops@example.org\nBcc: x@evil", Message(subject="s", text="t"))
