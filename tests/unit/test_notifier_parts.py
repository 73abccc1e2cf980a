"""SMS segments and sender pools, webhook signatures, email HTML and threading."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import uuid4

from notifier.segments import fit, is_gsm7, segments
from notifier.senders import Sender, SenderPool
from notifier.templates import render
from notifier.webhook import sign, verify
from rules.events import Alert, Evidence


def test_segments_count_gsm7_and_ucs2() -> None:
    assert segments("a" * 160) == 1 and segments("a" * 161) == 2 and segments("a" * 306) == 2
    assert segments("€" * 80) == 1 and segments("€" * 81) == 2  # extension characters count twice
    assert not is_gsm7("smoke … nearby") and segments("é" * 160) == 1  # é is GSM-7
    assert segments("ż" * 70) == 1 and segments("ż" * 71) == 2  # UCS-2: 70, then 67 per part


def test_fit_keeps_the_start_and_the_budget() -> None:
    text = "CRITICAL: Fire @ cam-1 " + "x=1 " * 100
    cut = fit(text, 1)
    assert cut.startswith("CRITICAL: Fire @ cam-1") and cut.endswith("...") and segments(cut) == 1
    assert len(cut) == 160
    assert segments(fit(text, 2)) == 2 and fit("short", 1) == "short"
    assert segments(fit("ż" * 200, 1)) == 1


async def test_sender_pool_spreads_and_rate_limits() -> None:
    now = [0.0]
    pool = SenderPool([Sender("+1", 1.0), Sender("+2", 3.0)], clock=lambda: now[0])
    picks = [await pool.acquire(1) for _ in range(2)]
    assert sorted(picks) == ["+1", "+2"]  # both free: both used
    waited = asyncio.get_running_loop().time()
    third = await pool.acquire(1)
    assert third == "+2" and asyncio.get_running_loop().time() - waited >= 0.3  # +2 is free again first


def test_webhook_signatures_verify_and_refuse_tampering_and_replays() -> None:
    body = b'{"title": "Fire"}'
    signature = sign("s3cret", "1700000000", body)
    assert verify("s3cret", "1700000000", body, signature, now=1700000100)
    assert not verify("s3cret", "1700000000", body + b" ", signature, now=1700000100)
    assert not verify("other", "1700000000", body, signature, now=1700000100)
    assert not verify("s3cret", "1700000000", body, signature, now=1700009999)  # too old


def test_email_has_html_with_the_snapshot_and_threads_updates() -> None:
    now = datetime(2026, 1, 5, 3, tzinfo=UTC)
    fired = Alert(source_id="cam-1", time=now, alert_id=uuid4(), rule_id="fire", title="Fire <b>",
                  severity="critical", state="fired", group_key="cam-1", started_at=now,
                  evidence=Evidence(values={"count": 2}, snapshot="/tmp/snap.jpg"))
    first = render("email", fired)
    assert first.html is not None and 'src="cid:snapshot"' in first.html and "Fire &lt;b&gt;" in first.html
    assert first.thread_id == f"alert-{fired.alert_id}" and first.first_in_thread
    resolved = render("email", fired.model_copy(update={"state": "resolved", "resolved_at": now}))
    assert resolved.thread_id == first.thread_id and not resolved.first_in_thread
    assert render("webhook", fired).data["alert_id"] == str(fired.alert_id)
