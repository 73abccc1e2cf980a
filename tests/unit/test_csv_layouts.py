"""Monitoring files as agencies ship them: other delimiters, quoting, day-first and
month-first dates, duplicated rows; and hourly PM2.5 gets its 24-hour AQI as pushed
readings do. Layouts are generated from one series, so each variant is checked against the
same expected readings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.csv_layout import LayoutError, infer_time_format
from ingest.csv_replay import CsvReplaySensor
from ingest.events import Reading
from ingest.settings import AirQualitySourceSettings

START = datetime(2001, 6, 22, tzinfo=UTC)
SERIES = [(START + timedelta(hours=hour), 10.0 + hour) for hour in range(30)]


def sensor(path: Path, **extra: object) -> CsvReplaySensor:
    settings = AirQualitySourceSettings.model_validate({
        "id": "aq-1", "path": path, "columns": {"pm25": {"field": "pm25", "unit": "ug/m3"}}, "speed": 1e9,
        "period_s": 3600, **extra})
    return CsvReplaySensor(settings)


async def readings(path: Path, **extra: object) -> list[Reading]:
    return [item async for item in sensor(path, **extra).readings() if isinstance(item, Reading)]


LAYOUTS: dict[str, tuple[str, str, Callable[[datetime], str]]] = {
    "iso-comma": (",", "date", lambda t: t.strftime("%Y-%m-%d %H:%M:%S")),
    "us-tab": ("\t", "Date", lambda t: f"{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}"),
    "eu-semicolon": (";", "date", lambda t: t.strftime("%d.%m.%Y %H:%M")),
    "eu-slash-pipe": ("|", "DATE", lambda t: t.strftime("%d/%m/%Y %H:%M")),
    "iso-zulu": (",", "date", lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")),
}


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_every_layout_reads_to_the_same_readings(tmp_path: Path, layout: str) -> None:
    delimiter, column, show = LAYOUTS[layout]
    path = tmp_path / f"{layout}.csv"
    lines = [f"{column}{delimiter}pm25{delimiter}site"]
    lines += [f"{show(t)}{delimiter}{v}{delimiter}\"Marylebone{delimiter} Road\"" for t, v in SERIES]
    path.write_text("\n".join(lines) + "\n")
    got = await readings(path)
    assert [(r.time, r.values["pm25"]) for r in got] == SERIES


async def test_a_tab_file_with_the_wrong_column_names_says_what_it_has(tmp_path: Path) -> None:
    path = tmp_path / "tab.csv"
    path.write_text("Date\tNO2\n6/22/2001 0:00\t12\n")
    expected = r"no column 'pm25' \(columns read with delimiter '\\t': Date, NO2\)"
    with pytest.raises(ValueError, match=expected):
        sensor(path)


def test_day_and_month_first_are_told_by_the_rows_or_refused() -> None:
    early = [(line, f"0{line % 9 + 1}/02/2001 0:00") for line in range(2, 40)]
    with pytest.raises(LayoutError, match=r"ambiguous .*%d/%m/%Y %H:%M reads it as 2001-02-03.*%m/%d/%Y"):
        infer_time_format(early)
    assert infer_time_format([*early, (41, "13/02/2001 0:00")]) == "%d/%m/%Y %H:%M"
    assert infer_time_format([*early, (41, "02/13/2001 0:00")]) == "%m/%d/%Y %H:%M"
    assert infer_time_format([(2, "not a date"), (3, "2001-06-22 01:00:00")]) == "%Y-%m-%d %H:%M:%S"
    with pytest.raises(LayoutError, match="no time in a layout known here"):
        infer_time_format([(2, "yesterday"), (3, "today")])


async def test_duplicated_times_are_read_once_with_one_id(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    rows = ["date,pm25", *(f"{t:%Y-%m-%d %H:%M:%S},{v}" for t, v in SERIES[:5])]
    rows.insert(3, rows[2])  # an exporter's repeated row
    path.write_text("\n".join(rows) + "\n")
    replay = sensor(path)
    got = [item async for item in replay.readings() if isinstance(item, Reading)]
    assert [r.time for r in got] == [t for t, _ in SERIES[:5]] and replay.stats.duplicates == 1
    again = await readings(path)
    assert [r.event_id for r in again] == [r.event_id for r in got]  # the same ids every replay


async def test_hourly_pm25_gets_its_24_hour_aqi_once_the_day_is_covered(tmp_path: Path) -> None:
    path = tmp_path / "pm.csv"
    path.write_text("date,pm25\n" + "".join(f"{t:%Y-%m-%d %H:%M:%S},35.0\n" for t, _ in SERIES))
    got = await readings(path)
    with_aqi = [r for r in got if r.aqi is not None]
    assert got.index(with_aqi[0]) == 17  # 18 of 24 hours: 75 % of the window
    # 35.0 µg/m³ on the EPA's 2024 breakpoints (9.1-35.4 is AQI 51-100): 51 + 49 / 26.3 * 25.9
    assert with_aqi[0].aqi_pollutant == "pm25" and with_aqi[0].aqi == 99
    # the NowCast is reported from the second hour (2 of the last 3 hours hold data)
    assert [r.nowcast_aqi for r in got[:3]] == [None, 99, 99]
