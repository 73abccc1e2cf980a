"""Air-quality push over real HTTP into `citywatch ingest`, through the real broker."""

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import aiohttp
import pytest

from citywatch.codecs import decode_event
from citywatch.infra.process import free_port
from citywatch.topics import Topics, ensure_topics
from ingest.aq_receiver import MAX_BODY_BYTES
from ingest.events import Reading
from tests.kafka_helpers import dead_letters, drain
from tests.unit.test_air_quality_push import AIRROHR, ttn_uplink

pytestmark = pytest.mark.integration


async def post_until_up(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> int:
    for _ in range(100):
        try:
            async with session.post(url, data=body, headers=headers) as response:
                return response.status
        except aiohttp.ClientConnectorError:
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url} never answered")


async def test_pushed_readings_reach_kafka_and_bad_ones_are_dead_letters(
    tmp_path: Path, bootstrap: str
) -> None:
    run = f"aq{uuid4().hex[:8]}"
    topics = Topics(run)
    await ensure_topics(bootstrap, topics, partitions=1)
    port = free_port()
    config = tmp_path / "citywatch.yaml"
    config.write_text(f"""
broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}, partitions: 1}}
sources:
  sensors:
    - {{id: aq-park, device_id: esp8266-13572468, position: {{lat: 52.52, lon: 13.40}}}}
    - {{id: aq-bridge, device_id: aq-node-3}}
  http_receiver: {{enabled: true, port: {port}}}
""")
    process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, stopped below
        [sys.executable, "-m", "citywatch", "--config", str(config), "ingest", "--status-every", "0"],
        stderr=subprocess.PIPE, text=True)
    try:
        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{port}"
            ok = await post_until_up(session, f"{base}/sensor-community", AIRROHR,
                                     {"X-Sensor": "esp8266-13572468"})
            unknown = await post_until_up(session, f"{base}/sensor-community", AIRROHR,
                                          {"X-Sensor": "esp8266-1"})
            garbage = await post_until_up(session, f"{base}/readings", b"{not json", {})
            hostile = [await post_until_up(session, f"{base}/readings", body, {}) for body in (
                b"[" * 100_000 + b"]" * 100_000,  # used to be a 500
                b'{"sensor_id":"aq-park","time":"0001-01-01T00:00:00+01:00","values":{"pm25":1},'
                b'"units":{"pm25":"ug/m3"}}',
                b"x" * (MAX_BODY_BYTES + 10))]
            after = await post_until_up(session, f"{base}/sensor-community", AIRROHR,
                                        {"X-Sensor": "esp8266-13572468"})
            lorawan = await post_until_up(session, f"{base}/ttn", ttn_uplink({"pm2_5": 9.1}),
                                          {"Content-Type": "application/json"})
            join = await post_until_up(session, f"{base}/ttn", b'{"end_device_ids":{"device_id":"aq-node-3"},'
                                       b'"join_accept":{"session_key_id":"x"}}', {})
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    statuses = (ok, unknown, garbage, hostile, after, lorawan, join)
    assert statuses == (201, 404, 400, [400, 400, 413], 201, 201, 400)
    reading, _, from_ttn = [decode_event("readings", raw)
                            for raw in await drain(bootstrap, topics.name("readings"))]
    assert isinstance(reading, Reading) and reading.source_id == "aq-park"
    assert isinstance(from_ttn, Reading)
    assert (from_ttn.source_id, from_ttn.values) == ("aq-bridge", {"pm25": 9.1})
    assert reading.position is not None and reading.position.lat == 52.52
    letters = await dead_letters(bootstrap, topics)
    assert sorted(letter.reason.split(":")[0] for letter in letters) == (
        ["generic"] * 4 + ["sensor-community", "ttn"])
    assert any("larger than" in letter.reason and len(letter.raw) == MAX_BODY_BYTES for letter in letters)
    assert any(letter.raw == AIRROHR and "unknown sensor" in letter.reason for letter in letters)
