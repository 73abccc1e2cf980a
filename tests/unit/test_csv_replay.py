from pathlib import Path

import pytest

from ingest.csv_replay import CsvReplaySensor
from ingest.events import Reading
from ingest.rejected import Rejected
from ingest.settings import AirQualitySourceSettings, CsvColumnSettings


async def test_replay_turns_rows_into_readings_and_rejects_bad_rows(tmp_path: Path) -> None:
    data = tmp_path / "aq.csv"
    data.write_text(
        "date,no2,ws\n"
        "2001-01-01 00:00:00,188.1,3\n"
        "2001-01-01 01:00:00,NA,3\n"          # a gap: no value measured
        "2001-01-01 02:00:00,abc,3\n"         # not a number
        "not-a-date,10,3\n"
        "2001-01-01 04:00:00,20.5,3\n"
    )
    sensor = CsvReplaySensor(AirQualitySourceSettings(
        id="aq-1", path=data, columns={"no2": CsvColumnSettings(field="no2", unit="ug/m3")}, speed=1e9))
    items = [item async for item in sensor.readings()]
    readings = [i for i in items if isinstance(i, Reading)]
    rejected = [i for i in items if isinstance(i, Rejected)]
    assert [r.values["no2"] for r in readings] == [188.1, 20.5]
    assert readings[0].aqi == 99 and readings[0].aqi_pollutant == "no2"
    assert readings[0].time.isoformat() == "2001-01-01T00:00:00+00:00"
    assert [r.reason.split(": ", 1)[0] for r in rejected] == ["aq.csv:4", "aq.csv:5"]
    assert "is not a finite number" in rejected[0].reason and "bad time" in rejected[1].reason
    assert sensor.stats.empty_rows == 1


async def test_real_data_set_replays(aq_csv: Path) -> None:
    sensor = CsvReplaySensor(AirQualitySourceSettings(
        id="aq-uk", path=aq_csv, columns={"no2": CsvColumnSettings(field="no2", unit="ug/m3")},
        speed=1e9, start_row=180, max_rows=40))
    readings = [i async for i in sensor.readings() if isinstance(i, Reading)]
    assert len(readings) >= 30
    assert max(r.values["no2"] for r in readings) > 100  # the high-NO2 episode the demo uses


NO2 = {"no2": CsvColumnSettings(field="no2", unit="ug/m3")}
ROWS = "".join(f"2001-01-01 {h:02d}:00:00,{10 + h},3\n" for h in range(10))


class StopAfter:
    """A sink that takes `limit` readings and then fails, like a process killed mid-replay."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.readings: list[Reading] = []
        self.refused: list[Rejected] = []

    async def reading(self, reading: Reading) -> None:
        if len(self.readings) >= self.limit:
            raise ConnectionError("killed")
        self.readings.append(reading)

    async def rejected(self, item: Rejected, stream: str) -> None:
        self.refused.append(item)

    async def frame(self, frame: object) -> None:
        raise AssertionError

    async def telemetry(self, event: object) -> None:
        raise AssertionError


async def test_a_restarted_replay_resumes_and_replaying_again_has_the_same_ids(tmp_path: Path) -> None:
    data = tmp_path / "aq.csv"
    data.write_text("date,no2,ws\n" + ROWS)

    def sensor(checkpoint: Path | None) -> CsvReplaySensor:
        return CsvReplaySensor(AirQualitySourceSettings(id="aq-1", path=data, columns=NO2, speed=1e9),
                               checkpoint)

    checkpoint = tmp_path / "state" / "aq-1.json"
    first = StopAfter(4)
    with pytest.raises(ConnectionError):
        await sensor(checkpoint).run(first)
    rest = StopAfter(100)
    await sensor(checkpoint).run(rest)
    assert [r.values["no2"] for r in first.readings + rest.readings] == [10.0 + h for h in range(10)]
    again = StopAfter(100)
    await sensor(checkpoint).run(again)
    assert again.readings == []  # finished: a restart sends nothing more
    fresh = StopAfter(100)
    await sensor(None).run(fresh)
    assert [r.event_id for r in fresh.readings] == [r.event_id for r in first.readings + rest.readings]


async def test_a_hostile_csv_costs_its_rows_never_the_replay(tmp_path: Path) -> None:
    data = tmp_path / "aq.csv"
    data.write_bytes(b"date,no2,ws\n2001-01-01 00:00:00,12,3\n"
                     b"2001-01-01 01:00:00,\xff\xfe,3\n"        # not UTF-8
                     b"2001-01-01 02:00:00,nan,3\n"              # not a finite number
                     b"2001-01-01 03:00:00,inf,3\n"
                     b"0001-01-01 00:00:00,5,3\n"                # a year events may not have
                     b"2001-01-01 04:00:00,1\x00 3,3\n"          # NUL
                     b'2001-01-01 05:00:00,"' + b"9" * 200_000 + b'",3\n'  # past csv's field limit
                     b"2001-01-01 06:00:00,20,3\n")
    sensor = CsvReplaySensor(AirQualitySourceSettings(id="aq-1", path=data, columns=NO2, speed=1e9))
    sink = StopAfter(100)
    await sensor.run(sink)
    assert [r.values["no2"] for r in sink.readings] == [12.0, 20.0]
    assert len(sink.refused) == 6, [r.reason for r in sink.refused]
    assert all(r.reason.startswith("aq.csv:") for r in sink.refused)
