"""One broken source is reported offline and the others keep running."""

from __future__ import annotations

import asyncio
from pathlib import Path

from citywatch.codecs import decode_event
from citywatch.deadletter import Headers
from citywatch.settings import load_settings
from citywatch.sources import SourceCounters, run_sources
from citywatch.topics import TopicName
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
