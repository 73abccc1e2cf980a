"""One broken source is reported offline and the others keep running."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from citywatch.codecs import decode_event
from citywatch.deadletter import Headers
from citywatch.settings import load_settings
from citywatch.sources import PublisherSink, SourceCounters, run_sources
from citywatch.topics import TopicName, Topics
from ingest.events import DataQuality, Reading

HOSTILE = Path(__file__).resolve().parents[1] / "data" / "hostile"


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[TopicName, bytes]] = []

    async def send(self, topic: TopicName, key: bytes, value: bytes, headers: Headers | None = None) -> None:
        self.sent.append((topic, value))


async def test_an_unreadable_flight_log_stops_only_its_drone(tmp_path: Path, vtest_avi: Path) -> None:
    data = tmp_path / "aq.csv"
    data.write_text("date,no2\n2001-01-01 00:00:00,10\n2001-01-01 01:00:00,12\n")
    config = tmp_path / "citywatch.yaml"
    config.write_text(f"""
infra: {{state_dir: "{tmp_path / 'state'}"}}
sources:
  cameras:
    - id: drone-1
      url: "{vtest_avi}"
      kind: drone
      telemetry: {{format: dji_srt, path: "{HOSTILE / 'drone' / 'garbage.SRT'}"}}
  air_quality:
    - {{id: aq-1, path: "{data}", columns: {{no2: {{field: no2, unit: ug/m3}}}}, speed: 1e9}}
""")
    recorder, counters = Recorder(), SourceCounters()
    await asyncio.wait_for(run_sources(load_settings(config), recorder, counters), 30)
    events = [decode_event(topic, raw) for topic, raw in recorder.sent]
    offline = [e for e in events if isinstance(e, DataQuality)]
    assert [(e.source_id, e.issue, e.active) for e in offline] == [("drone-1", "offline", True)]
    assert "garbage.SRT" in offline[0].detail
    assert [e.values["no2"] for e in events if isinstance(e, Reading)] == [10.0, 12.0]
    assert counters.counts["source_errors"] == 1


class FlakyBroker(Recorder):
    """Away for the first `outage` sends; refuses readings over `max_bytes` for good."""

    def __init__(self, outage: int, max_bytes: int = 1 << 20) -> None:
        super().__init__()
        self.outage, self.max_bytes = outage, max_bytes

    async def send(self, topic: TopicName, key: bytes, value: bytes, headers: Headers | None = None) -> None:
        if self.outage:
            self.outage -= 1
            raise KafkaConnectionError("the broker is away")
        if topic == "readings" and len(value) > self.max_bytes:
            raise MessageSizeTooLargeError()
        await super().send(topic, key, value, headers)


async def test_a_source_waits_for_the_broker_and_keeps_what_it_refuses() -> None:
    broker = FlakyBroker(outage=3, max_bytes=300)
    sink = PublisherSink(broker, Topics("t"), SourceCounters())
    now = datetime.now(UTC)
    await sink.reading(Reading(source_id="aq-1", time=now, values={"no2": 1.0}, units={"no2": "ppb"}))
    big = Reading(source_id="aq-1", time=now, values={f"v{i}": 1.0 for i in range(40)}, units={})
    await sink.reading(big)
    assert [topic for topic, _ in broker.sent] == ["readings", "deadletter"]  # waited, then kept
    assert sink.counters.counts == {"readings": 1, "unpublishable": 1, "rejected": 1}


async def test_a_replay_whose_file_is_missing_is_reported_offline_too(tmp_path: Path) -> None:
    config = tmp_path / "citywatch.yaml"
    config.write_text(f"""
infra: {{state_dir: "{tmp_path / 'state'}"}}
sources:
  air_quality:
    - {{id: aq-gone, path: "{tmp_path / 'missing.csv'}", columns: {{no2: {{field: no2, unit: ug/m3}}}}}}
""")
    recorder, counters = Recorder(), SourceCounters()
    await asyncio.wait_for(run_sources(load_settings(config), recorder, counters), 30)
    [offline] = [decode_event(topic, raw) for topic, raw in recorder.sent]
    assert isinstance(offline, DataQuality)
    assert (offline.source_id, offline.source_kind, offline.issue) == ("aq-gone", "sensor", "offline")
    assert "missing.csv" in offline.detail and counters.counts["source_errors"] == 1
