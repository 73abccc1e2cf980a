"""Air-quality readings over a real MQTT broker (mosquitto) into Kafka via `citywatch ingest`."""

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from uuid import uuid4

import aiomqtt
import pytest

from citywatch.codecs import decode_event
from citywatch.deadletter import DeadLetter
from citywatch.topics import Topics, ensure_topics
from ingest.events import Reading
from tests.kafka_helpers import dead_letters, drain
from tests.unit.test_air_quality_push import AIRROHR, ttn_uplink

pytestmark = pytest.mark.integration

DEADLINE_S = 60.0


async def test_mqtt_readings_reach_kafka(
    tmp_path: Path, bootstrap: str, mqtt_broker: tuple[str, int]
) -> None:
    host, port = mqtt_broker
    run = f"mq{uuid4().hex[:8]}"
    topics = Topics(run)
    await ensure_topics(bootstrap, topics, partitions=1)
    config = tmp_path / "citywatch.yaml"
    config.write_text(f"""
broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}, partitions: 1}}
sources:
  sensors:
    - {{id: aq-park, device_id: esp8266-13572468}}
    - {{id: aq-7, device_id: aq-7, expected_interval_s: 3600}}
    - {{id: aq-bridge, device_id: aq-node-3}}
  mqtt:
    enabled: true
    host: {host}
    port: {port}
    subscriptions:
      - {{topic: "{run}/sc/+", format: sensor-community}}
      - {{topic: "{run}/generic/+", format: generic}}
      - {{topic: "{run}/v3/city-air@ttn/devices/+/up", format: ttn}}
""")
    # Retained messages reach the subscriber whenever it connects: no race with its start-up.
    async with aiomqtt.Client(host, port) as client:
        await client.publish(f"{run}/sc/esp8266-13572468", AIRROHR, qos=1, retain=True)
        await client.publish(f"{run}/generic/aq-7", b'{"sensor_id":"aq-7","period_s":3600,'
                             b'"values":{"no2":120},"units":{"no2":"ppb"}}', qos=1, retain=True)
        await client.publish(f"{run}/v3/city-air@ttn/devices/aq-node-3/up", ttn_uplink({"pm2_5": 9.1}),
                             qos=1, retain=True)  # as The Things Stack's MQTT integration publishes it
        await client.publish(f"{run}/generic/broken", b"not json", qos=1, retain=True)
        # one deeply nested message used to end MQTT ingestion until a restart
        await client.publish(f"{run}/generic/deep", b"[" * 100_000 + b"]" * 100_000, qos=1, retain=True)
    process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, stopped below
        [sys.executable, "-m", "citywatch", "--config", str(config), "ingest", "--status-every", "0"],
        stderr=subprocess.PIPE, text=True)
    readings: list[object] = []
    letters: list[DeadLetter] = []
    deadline = time.monotonic() + DEADLINE_S
    try:
        # the retained messages arrive in any order: wait for all four outcomes, not the readings only
        while time.monotonic() < deadline:
            raws = await drain(bootstrap, topics.name("readings"))
            readings = [decode_event("readings", raw) for raw in raws]
            letters = await dead_letters(bootstrap, topics)
            if len(readings) >= 3 and len(letters) >= 2:
                break
            await asyncio.sleep(0.5)
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    sources = sorted(r.source_id for r in readings if isinstance(r, Reading))
    assert sources == ["aq-7", "aq-bridge", "aq-park"], stderr[-2000:]
    assert [letter.reason.split(":")[0] for letter in letters] == ["generic", "generic"]
    reasons = sorted(letter.reason for letter in letters)
    assert "not JSON" in reasons[0] + reasons[1] and any("JSON" in r for r in reasons)
