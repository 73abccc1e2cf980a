"""The console in a real browser (Debian's chromium driven by Playwright) against a real
worker, broker and database: an alert made by the pipeline appears in the operator's live
feed and is acknowledged there; a viewer sees the feed but cannot act. Screenshots of each
page go to artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, Dialog, Page, Route, async_playwright, expect

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


@dataclass
class Stack:
    run: str
    base: str
    worker: Worker
    bootstrap: str

    async def reading(self, source: str, **values: float) -> None:
        publisher = KafkaPublisher(self.bootstrap, Topics(self.run), 1 << 20)
        await publisher.start()
        event = Reading(source_id=source, time=datetime.now(UTC), values=values,
                        units=dict.fromkeys(values, "µg/m³"))
        await publisher.send("readings", source.encode(), event.to_json())
        await publisher.stop()


@pytest.fixture
async def stack(tmp_path: Path, bootstrap: str, dsn: str, pg_pool: asyncpg.Pool) -> AsyncIterator[Stack]:
    """A worker with one rule, and the console as `citywatch console` serves it."""
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
sources:
  sensors:
    - {{id: aq-{run}, device_id: dev-a, position: {{lat: 51.5007, lon: -0.1246}}}}
    - {{id: aq2-{run}, device_id: dev-b, position: {{lat: 51.5101, lon: -0.1340}}}}
""")
    await ensure_topics(bootstrap, Topics(run), partitions=1)
    await make_user(pg_pool, f"olive-{run}", "operator")
    await make_user(pg_pool, f"vera-{run}", "viewer")
    await make_user(pg_pool, f"rex-{run}", "rule_editor")
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
        yield Stack(run, base, worker, bootstrap)
    finally:
        worker.stop()
        console.terminate()
        try:
            console.wait(20)
        except subprocess.TimeoutExpired:
            console.kill()


async def test_an_alert_from_the_pipeline_is_acknowledged_in_the_browser(
    stack: Stack, pg_pool: asyncpg.Pool, browser: Browser,
) -> None:
    run, base, worker = stack.run, stack.base, stack.worker
    operator_page = await (await browser.new_context()).new_page()
    await sign_in(operator_page, base, f"olive-{run}")
    await expect(operator_page.locator("#live.on")).to_be_visible(timeout=20_000)

    await stack.reading(f"aq-{run}", pm25=95.0)

    row = operator_page.locator("tr.alert-row", has_text=f"PM2.5 high at {run}")
    await expect(row).to_be_visible(timeout=60_000)  # the worker evaluates, the feed streams it
    await expect(row.locator(".severity")).to_have_text("critical")
    await operator_page.screenshot(path=str(SHOTS / "feed-operator-new-alert.png"), full_page=True)
    await row.locator("button.ack").click()
    await expect(row.locator(".acked")).to_contain_text(f"olive-{run}", timeout=20_000)
    await operator_page.screenshot(path=str(SHOTS / "feed-operator-acknowledged.png"), full_page=True)
    async def reason(dialog: Dialog) -> None:
        await dialog.accept("sensor cleaned")

    operator_page.once("dialog", reason)
    await row.locator("button.resolve").first.click()  # closed by hand: the worker resolves it
    rows = operator_page.locator("tr.alert-row", has_text=f"PM2.5 high at {run}")
    resolved = rows.locator(".state.resolved")
    await expect(resolved).to_have_count(1, timeout=30_000)

    async def answer(dialog: Dialog) -> None:  # how long, then why
        await dialog.accept("30m" if "how long" in dialog.message else "lens cleaning")

    operator_page.on("dialog", answer)
    await rows.first.locator("button.silence").click()
    silence = await until("the silence in the audit log", lambda: pg_pool.fetchrow(
        "SELECT detail FROM audit_log WHERE actor = $1 AND action = 'silence'", f"olive-{run}"), worker)
    detail = json.loads(silence["detail"])
    assert detail["reason"] == "lens cleaning" and detail["rule_id"] == f"pm-high-{run}"
    until_time = datetime.fromisoformat(detail["until"])
    assert timedelta(minutes=29) < until_time - datetime.now(UTC) <= timedelta(minutes=30)
    stored = await until("the acknowledgement stored by the worker", lambda: pg_pool.fetchval(
        "SELECT count(*) FROM alert_acks WHERE by_whom = $1 AND via = 'console'", f"olive-{run}"), worker)
    assert stored == 1

    viewer_page = await (await browser.new_context()).new_page()
    await sign_in(viewer_page, base, f"vera-{run}")
    viewer_row = viewer_page.locator("tr.alert-row", has_text=f"PM2.5 high at {run}").last  # the firing
    await expect(viewer_row).to_be_visible()
    await expect(viewer_row.locator(".acked")).to_contain_text(f"olive-{run}")
    assert await viewer_page.locator("button.ack").count() == 0  # a viewer cannot act
    await viewer_page.screenshot(path=str(SHOTS / "feed-viewer.png"), full_page=True)
    login_page = await (await browser.new_context()).new_page()
    await login_page.goto(f"{base}/")
    await expect(login_page.locator('input[name="username"]')).to_be_visible()  # signed out: the login
    await login_page.screenshot(path=str(SHOTS / "login.png"))


NO2_RULE = """id: no2-{run}
title: NO2 high at {run}
severity: warning
sources: {{ids: [aq-{run}]}}
condition:
  type: threshold
  field: no2
  {limit}
"""


async def test_rules_are_edited_checked_published_and_queried_in_the_browser(
    stack: Stack, pg_pool: asyncpg.Pool, browser: Browser,
) -> None:
    run, base = stack.run, stack.base
    page = await (await browser.new_context()).new_page()
    await sign_in(page, base, f"rex-{run}")

    async def folder_archived() -> bool:
        return "pm.yaml" in await (await page.request.get(f"{base}/api/rules/files")).text()

    await until("the worker's rule folder in the archive", folder_archived, stack.worker)
    typed = asyncio.Event()

    async def file_list_after_typing(route: Route) -> None:
        await typed.wait()  # the slow network the editor must cope with: the list comes late
        await route.continue_()

    await page.route("**/api/rules/files", file_list_after_typing)
    await page.goto(f"{base}/rules")
    await page.fill("#name", f"no2-{run}.yaml")
    typed.set()
    await expect(page.locator("#files")).to_contain_text("pm.yaml")  # it came, and took nothing over
    await expect(page.locator("#name")).to_have_value(f"no2-{run}.yaml")
    await page.unroute("**/api/rules/files")
    broken = NO2_RULE.format(run=run, limit="abov: 40")  # a typo on line 8
    await page.fill("#yaml", broken)
    await expect(page.locator("#errors li").first).to_contain_text("line 8", timeout=10_000)
    await expect(page.locator('#gutter span.bad[data-line="8"]')).to_have_count(1)
    await expect(page.locator("#publish")).to_be_disabled()  # an invalid rule cannot be published
    await page.screenshot(path=str(SHOTS / "rules-editor-error.png"), full_page=True)

    await page.fill("#yaml", NO2_RULE.format(run=run, limit="above: 40"))
    await expect(page.locator("#status")).to_contain_text(f"valid: no2-{run}", timeout=10_000)
    await page.click("#diff")
    await expect(page.locator("#diff-out")).to_contain_text(f"+id: no2-{run}")
    await page.fill("#comment", "NO2 watch for the test")
    await page.click("#publish")
    await expect(page.locator("#status")).to_contain_text(f"published no2-{run}.yaml", timeout=10_000)
    await page.screenshot(path=str(SHOTS / "rules-editor-published.png"), full_page=True)
    await page.fill("#name", "pm.yaml")  # the same draft under the name of another live file
    await expect(page.locator("#status")).to_contain_text(f"valid: no2-{run}")
    await page.click("#publish")
    await expect(page.locator("#status")).to_contain_text("pm.yaml already exists")  # nothing overwritten

    # the published rule takes effect in the running worker
    deadline = time.monotonic() + 60
    fired = 0
    while not fired and time.monotonic() < deadline:
        await stack.reading(f"aq-{run}", no2=99.0)
        await asyncio.sleep(2)
        fired = await pg_pool.fetchval("SELECT count(*) FROM alerts WHERE rule_id = $1", f"no2-{run}")
    assert fired, stack.worker.log.read_text()[-3000:]
    versions = page.locator("#versions tbody tr")
    await page.reload()
    await page.click(f"text=no2-{run}.yaml")
    await expect(versions.first).to_contain_text(f"rex-{run}", timeout=10_000)

    # history: the alerts of the run in the table, and a drawn series
    await page.goto(f"{base}/history")
    await page.select_option('select[name="kind"]', "alerts")
    await page.fill('input[name="source"]', f"aq-{run}")
    await page.click('#query button[type="submit"]')
    await expect(page.locator("tr.history-row", has_text=f"no2-{run}").first).to_be_visible(timeout=10_000)
    await page.select_option('select[name="name"]', "alerts_per_rule")
    await page.click('#series button[type="submit"]')
    await expect(page.locator("#chart circle.point").first).to_be_visible(timeout=10_000)
    await expect(page.locator("#legend")).to_contain_text(f"no2-{run}")
    await page.screenshot(path=str(SHOTS / "history.png"), full_page=True)
    for name in ("sources", "oncall"):
        await page.goto(f"{base}/{name}")
        await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    alert_id = await pg_pool.fetchval("SELECT alert_id FROM alerts WHERE rule_id = $1 LIMIT 1", f"no2-{run}")
    await page.goto(f"{base}/alerts/{alert_id}")
    await expect(page.locator("#timeline li").first).to_contain_text("fired")
    await expect(page.locator("#map circle")).to_have_count(2)  # both sensors, this one marked
    await expect(page.locator('#map circle[r="9"] title')).to_have_text(f"aq-{run}")
    await page.screenshot(path=str(SHOTS / "alert-detail.png"), full_page=True)

    # a viewer sees the rules but cannot change them, in the page or through the API
    viewer = await (await browser.new_context()).new_page()
    await sign_in(viewer, base, f"vera-{run}")
    await viewer.goto(f"{base}/rules")
    await expect(viewer.locator("#files li").first).to_be_visible(timeout=10_000)
    assert await viewer.locator("#publish").count() == 0
    assert await viewer.locator("#yaml").get_attribute("readonly") is not None
    status = await viewer.evaluate("""async () => (await fetch('/api/rules/publish', {method: 'POST',
        headers: {'Content-Type': 'application/json',
                  'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content},
        body: JSON.stringify({name: 'x.yaml', content: 'id: x'})})).status""")
    assert status == 403
    await viewer.screenshot(path=str(SHOTS / "rules-viewer.png"), full_page=True)
