"""Dead letters in TimescaleDB: stored once however often delivered, listed by the CLI and
the console, and requeued to the topic they came from (only those that came from one)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from fastapi.testclient import TestClient

from citywatch.console.app import create_app
from citywatch.settings import Settings, load_settings
from citywatch.topics import Topics, ensure_topics
from storage.dead_letters import DeadLetterRow, store_dead_letters
from storage.migrate import migrate
from tests.console_helpers import make_user, sign_in
from tests.kafka_helpers import drain_records

pytestmark = pytest.mark.integration


@pytest.fixture
async def setup(tmp_path: Path, bootstrap: str, dsn: str, pg_pool: asyncpg.Pool,
                monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Settings, str]:
    run = f"dl{uuid4().hex[:8]}"
    monkeypatch.setenv("CITYWATCH_CONSOLE__SESSION_SECRET", uuid4().hex)
    config = tmp_path / "citywatch.yaml"
    config.write_text(
        f'broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}}}\nstorage: {{dsn: "{dsn}"}}\n')
    await ensure_topics(bootstrap, Topics(run), partitions=1)
    async with pg_pool.acquire() as connection:
        await migrate(connection)
    return config, load_settings(config), run


def letter(run: str, offset: int | None, payload: bytes, reason: str) -> DeadLetterRow:
    return DeadLetterRow(rejected_at=datetime.now(UTC), origin_topic=f"{run}.readings", consumer="store",
                         reason=reason, payload=payload, origin_partition=0 if offset is not None else None,
                         origin_offset=offset, source_id="aq-1")


@pytest.fixture
def console(setup: tuple[Path, Settings, str]) -> Iterator[TestClient]:
    with TestClient(create_app(setup[1])) as client:
        yield client


async def test_stored_once_listed_and_requeued_to_their_topic(
    setup: tuple[Path, Settings, str], console: TestClient, pg_pool: asyncpg.Pool, bootstrap: str,
) -> None:
    config, _, run = setup
    from_topic = letter(run, 41, b'{"bad": "<b>reading</b>"}', "invalid Reading: time is outside the years")
    from_source = letter(run, None, b"\xff\xfe body", "generic: not JSON")
    assert await store_dead_letters(pg_pool, [from_topic, from_source]) == 2
    assert await store_dead_letters(pg_pool, [from_topic]) == 0  # a redelivery stores nothing
    cli = [sys.executable, "-m", "citywatch", "--config", str(config), "deadletter"]
    listed = subprocess.run([*cli, "list", "--origin", f"{run}.readings", "--json"],  # noqa: ASYNC221
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    rows = {row["reason"]: row for row in json.loads(listed.stdout)}
    assert set(rows) == {from_topic.reason, from_source.reason}
    assert rows[from_source.reason]["preview"].startswith("ff fe")  # not text: hex

    refused = subprocess.run([*cli, "requeue", str(from_source.id)],  # noqa: ASYNC221 - a short CLI call
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "before it reached a topic" in refused.stderr

    name = f"adm-{uuid4().hex[:6]}"
    await make_user(pg_pool, name, "admin")
    csrf = sign_in(console, name)
    page = console.get("/deadletters")
    assert from_topic.reason in page.text and "&lt;b&gt;reading&lt;/b&gt;" in page.text
    answer = console.post(f"/api/deadletters/{from_topic.id}/requeue", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200, answer.text
    assert answer.json()["topic"] == f"{run}.readings"
    records = await drain_records(bootstrap, f"{run}.readings")
    assert [(r.value, dict(r.headers)["requeued_from"]) for r in records] == [
        (from_topic.payload, str(from_topic.id).encode())]
    again = console.post(f"/api/deadletters/{from_source.id}/requeue", headers={"X-CSRF-Token": csrf})
    assert again.status_code == 409
    pending = console.get("/api/deadletters", params={"pending": True, "origin": f"{run}.readings"}).json()
    assert [row["reason"] for row in pending] == [from_source.reason]  # the requeued one is marked
