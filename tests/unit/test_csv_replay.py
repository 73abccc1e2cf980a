from pathlib import Path

from ingest.csv_replay import Column, CsvReplayConfig, CsvReplaySensor
from ingest.events import Reading
from ingest.rejected import Rejected


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
    sensor = CsvReplaySensor(CsvReplayConfig(
        source_id="aq-1", path=data, columns={"no2": Column("no2", "ug/m3")}, speed=1e9))
    items = [item async for item in sensor.readings()]
    readings = [i for i in items if isinstance(i, Reading)]
    rejected = [i for i in items if isinstance(i, Rejected)]
    assert [r.values["no2"] for r in readings] == [188.1, 20.5]
    assert readings[0].aqi == 99 and readings[0].aqi_pollutant == "no2"
    assert readings[0].time.isoformat() == "2001-01-01T00:00:00+00:00"
    assert [r.reason.split(": ", 1)[0] for r in rejected] == ["aq.csv:4", "aq.csv:5"]
    assert "is not a number" in rejected[0].reason and "bad time" in rejected[1].reason
    assert sensor.stats.empty_rows == 1


async def test_real_data_set_replays(aq_csv: Path) -> None:
    sensor = CsvReplaySensor(CsvReplayConfig(
        source_id="aq-uk", path=aq_csv, columns={"no2": Column("no2", "ug/m3")},
        speed=1e9, start_row=180, max_rows=40))
    readings = [i async for i in sensor.readings() if isinstance(i, Reading)]
    assert len(readings) >= 30
    assert max(r.values["no2"] for r in readings) > 100  # the high-NO2 episode the demo uses
