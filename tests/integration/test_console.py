"""The console against the real TimescaleDB (browser tests arrive with the full console)."""

from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import pytest
from fastapi.testclient import TestClient

from citywatch.console.app import create_app
from rules.events import Alert
from storage.writer import EventWriter

pytestmark = pytest.mark.integration


async def test_feed_and_api_show_stored_alerts(dsn: str, pg_pool: asyncpg.Pool) -> None:
    title = f"Console test {uuid4().hex[:6]}"
    now = datetime.now(UTC)
    await EventWriter(pg_pool).write([Alert(
        source_id="cam-console", time=now, alert_id=uuid4(), rule_id="crowd", title=title,
        severity="critical", state="fired", group_key="cam-console", started_at=now)])
    with TestClient(create_app(dsn)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        alerts = client.get("/api/alerts", params={"limit": 5}).json()
        assert alerts[0]["title"] == title and alerts[0]["severity"] == "critical"
        page = client.get("/")
        assert page.status_code == 200 and title in page.text
        assert client.get("/api/alerts", params={"limit": 0}).status_code == 422
