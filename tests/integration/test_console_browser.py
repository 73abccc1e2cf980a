"""The console in a real browser (Debian's chromium driven by Playwright) against a real
worker, broker and database: an alert made by the pipeline appears in the operator's live
feed and is acknowledged there; a viewer sees the feed but cannot act. Screenshots of each
page go to artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from citywatch.infra.process import free_port
from citywatch.publisher import KafkaPublisher
from citywatch.topics import Topics, ensure_topics
from ingest.events import Reading
from tests.console_helpers import PASSWORD, make_user
from tests.worker_process import Worker, until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RULE = """
id: pm-high-{run}
title: PM2.5 high at {run}
severity: critical
sources: {{ids: [aq-{run}]}}
condition: {{type: threshold, field: pm25, above: 50}}
"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Playwright gives each launch a fresh profile of its own."""
    if not CHROMIUM.exists():  # noqa: ASYNC240 - once, before the browser starts
        pytest.fail("chromium is not installed: run scripts/setup.sh (it installs Debian's chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser
        await browser.close()


async def sign_in(page: Page, base: str, name: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill('input[name="username"]', name)
    await page.fill('input[name="password"]', PASSWORD)
    await page.click('button[type="submit"]')
    await expect(page.locator("#who")).to_contain_text(name)


async def test_an_alert_from_the_pipeline_is_acknowledged_in_the_browser(
    tmp_path: Path, bootstrap: str, dsn: str, pg_pool: asyncpg.Pool, browser: Browser,
) -> None:
    run = f"br{uuid4().hex[:8]}"
    port = free_port()
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "pm.yaml").write_text(RULE.format(run=run))
    config = tmp_path / "citywatch.yaml"
    config.write_text(f"""
broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}, app_id: {run}, partitions: 1}}
storage: {{dsn: "{dsn}", batch_window_s: 0.3}}
infra: {{state_dir: "{tmp_path / 'state'}"}}
rules: {{paths: ["{tmp_path / 'rules'}"], reload_every_s: 1}}
console: {{host: 127.0.0.1, port: {port}}}
""")
    await ensure_topics(bootstrap, Topics(run), partitions=1)
    await make_user(pg_pool, f"olive-{run}", "operator")
    await make_user(pg_pool, f"vera-{run}", "viewer")
    SHOTS.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CITYWATCH_CONSOLE__SESSION_SECRET": uuid4().hex}
    with (tmp_path / "console.log").open("wb") as log:
        console = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, stopped below
            [sys.executable, "-m", "citywatch", "--config", str(config), "console"],
            stdout=log, stderr=subprocess.STDOUT, env=env)
    worker = Worker(config, tmp_path / "worker.log")
    worker.start()
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if (await http.get(f"{base}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.5)
        operator_page = await (await browser.new_context()).new_page()
        await sign_in(operator_page, base, f"olive-{run}")
        await expect(operator_page.locator("#live.on")).to_be_visible(timeout=20_000)

        publisher = KafkaPublisher(bootstrap, Topics(run), 1 << 20)
        await publisher.start()
        reading = Reading(source_id=f"aq-{run}", time=datetime.now(UTC), values={"pm25": 95.0},
                          units={"pm25": "µg/m³"})
        await publisher.send("readings", reading.source_id.encode(), reading.to_json())
        await publisher.stop()

        row = operator_page.locator("tr.alert-row", has_text=f"PM2.5 high at {run}")
        await expect(row).to_be_visible(timeout=60_000)  # the worker evaluates, the feed streams it
        await expect(row.locator(".severity")).to_have_text("critical")
        await operator_page.screenshot(path=str(SHOTS / "feed-operator-new-alert.png"), full_page=True)
        await row.locator("button.ack").click()
        await expect(row.locator(".acked")).to_contain_text(f"olive-{run}", timeout=20_000)
        await operator_page.screenshot(path=str(SHOTS / "feed-operator-acknowledged.png"), full_page=True)
        stored = await until("the acknowledgement stored by the worker", lambda: pg_pool.fetchval(
            "SELECT count(*) FROM alert_acks WHERE by_whom = $1 AND via = 'console'", f"olive-{run}"), worker)
        assert stored == 1

        viewer_page = await (await browser.new_context()).new_page()
        await sign_in(viewer_page, base, f"vera-{run}")
        viewer_row = viewer_page.locator("tr.alert-row", has_text=f"PM2.5 high at {run}")
        await expect(viewer_row).to_be_visible()
        await expect(viewer_row.locator(".acked")).to_contain_text(f"olive-{run}")
        assert await viewer_page.locator("button.ack").count() == 0  # a viewer cannot act
        await viewer_page.screenshot(path=str(SHOTS / "feed-viewer.png"), full_page=True)
        login_page = await (await browser.new_context()).new_page()
        await login_page.goto(f"{base}/")
        await expect(login_page.locator('input[name="username"]')).to_be_visible()  # signed out: the login
        await login_page.screenshot(path=str(SHOTS / "login.png"))
    finally:
        worker.stop()
        console.terminate()
        try:
            console.wait(20)
        except subprocess.TimeoutExpired:
            console.kill()
