"""tests/data/hostile: every surface meets every file of its kind and answers with a clear
refusal (a 4xx and a dead letter, a format error with a reason), never an exception."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from detectors.decode import decode_jpeg
from ingest.aq_receiver import AirQualityReceiver
from ingest.csv_replay import CsvReplaySensor
from ingest.dji_srt import SrtError, load_srt
from ingest.events import EventFormatError, Reading
from ingest.mavlink_log import MavlinkLogError, load_tlog
from ingest.sensors import SensorRegistry
from ingest.settings import AirQualitySourceSettings, CsvColumnSettings, SensorSettings
from ingest.sink import MemorySink
from rules.loader import load_rules

HOSTILE = Path(__file__).resolve().parents[1] / "data" / "hostile"
ACCEPTED = {"bom.json"}  # a UTF-8 byte order mark is how some clients send JSON: still a reading


def files(kind: str) -> list[Path]:
    return sorted((HOSTILE / kind).iterdir())


def receiver(sink: MemorySink) -> AirQualityReceiver:
    registry = SensorRegistry([
        SensorSettings(id="aq-7", device_id="aq-7", expected_interval_s=3600),
        SensorSettings(id="aq-park", device_id="esp8266-13572468", expected_interval_s=145)])
    return AirQualityReceiver(registry, sink, clock=lambda: datetime(2026, 11, 24, 10, 5, tzinfo=UTC))


@pytest.mark.parametrize("path", files("readings"), ids=lambda p: p.name)
async def test_every_hostile_reading_is_refused_with_a_reason_and_kept(path: Path) -> None:
    sink = MemorySink()
    protocol = "sensor-community" if path.name.startswith("sc-") else "generic"
    header = "esp8266-13572468" if protocol == "sensor-community" else None
    body = path.read_bytes()  # noqa: ASYNC240 - a small corpus file
    status, reason = await receiver(sink).receive(protocol, body, header)
    if path.name in ACCEPTED:
        assert status == 201 and len(sink.readings) == 1
        return
    assert 400 <= status < 500, (status, reason)
    assert reason.startswith(protocol) and len(reason) > len(protocol) + 2
    assert [item.raw for item, _ in sink.rejects] == [body]  # the body, kept whole
    assert sink.readings == []


async def test_too_many_readings_in_one_message_are_refused() -> None:
    body = b"[" + b",".join([b'{"sensor_id":"aq-7","values":{"no2":1},"units":{"no2":"ppb"}}'] * 1001) + b"]"
    status, reason = await receiver(MemorySink()).receive("generic", body)
    assert status == 400 and "1001 readings" in reason


@pytest.mark.parametrize("path", files("frames"), ids=lambda p: p.name)
def test_every_hostile_frame_is_refused_before_it_costs_memory(path: Path) -> None:
    with pytest.raises(EventFormatError, match="JPEG"):
        decode_jpeg(path.read_bytes())


@pytest.mark.parametrize("path", files("rules"), ids=lambda p: p.name)
def test_every_hostile_rule_file_is_refused_or_loaded_never_crashes(path: Path) -> None:
    rules, errors = load_rules([path])
    if path.name == "newline-title.yaml":  # valid: the title is sanitised where it becomes a header
        assert [r.id for r in rules] == ["nl"] and errors == []
        return
    if path.name == "empty.yaml":  # a file with no rules in it
        assert rules == [] and errors == []
        return
    assert rules == [] and errors, path.name
    assert all(str(e).startswith(str(path)) for e in errors)


@pytest.mark.parametrize("path", files("drone"), ids=lambda p: p.name)
def test_every_hostile_flight_log_is_refused_with_a_format_error(path: Path) -> None:
    loader = load_tlog if path.suffix == ".tlog" else load_srt
    with pytest.raises((SrtError, MavlinkLogError)):
        loader(path)


@pytest.mark.parametrize("path", files("csv"), ids=lambda p: p.name)
async def test_every_hostile_csv_costs_rows_never_the_replay(path: Path) -> None:
    """Bad rows cost themselves; a file with no header naming its columns (empty, binary)
    is refused at start with what it does have, and the source is reported offline."""
    columns = {"no2": CsvColumnSettings(field="no2", unit="ppb")}
    settings = AirQualitySourceSettings(id="aq-1", path=path, columns=columns, speed=1e9)
    if path.name in ("binary.csv", "no-header.csv"):
        with pytest.raises(ValueError, match=f"aq-1: {path.name}: the header has no column 'date', 'no2'"):
            CsvReplaySensor(settings)
        return
    sensor = CsvReplaySensor(settings)
    sink = MemorySink()
    await sensor.run(sink)
    assert all(isinstance(r, Reading) for r in sink.readings)
    assert all(item.reason.startswith(f"{path.name}:") for item, _ in sink.rejects)
