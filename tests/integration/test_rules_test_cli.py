"""`citywatch rules test` replays real stored history (the UK NO2 data) through a rule file."""

import json
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from ingest.csv_replay import CsvReplaySensor
from ingest.events import Reading
from ingest.settings import AirQualitySourceSettings, CsvColumnSettings
from storage.writer import EventWriter

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


async def test_rule_replay_prints_what_would_have_fired(
    tmp_path: Path, dsn: str, pg_pool: asyncpg.Pool, aq_csv: Path
) -> None:
    source = f"aq-{uuid4().hex[:8]}"
    columns = {"no2": CsvColumnSettings(field="no2", unit="ug/m3")}
    sensor = CsvReplaySensor(AirQualitySourceSettings(id=source, path=aq_csv, columns=columns,
                                             speed=1e9, start_row=180, max_rows=48))
    readings = [r async for r in sensor.readings() if isinstance(r, Reading)]
    await EventWriter(pg_pool).write(readings)
    rule = ROOT / "examples" / "rules" / "air-quality.yaml"
    stricter = tmp_path / "stricter.yaml"
    stricter.write_text(rule.read_text().replace("above: 100", "above: 130"))
    config = tmp_path / "citywatch.yaml"
    config.write_text(f'storage: {{dsn: "{dsn}"}}\nrules: {{paths: ["{rule}"]}}\n')
    cli = [sys.executable, "-m", "citywatch", "--config", str(config), "rules", "test"]
    window = ["--from", "2001-01-08T00:00Z", "--to", "2001-01-11T00:00Z"]

    result = subprocess.run([*cli, str(rule), *window], capture_output=True, text=True, timeout=60)  # noqa: ASYNC221
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if f"@ {source}" in line]
    # NO2 above 100 from 2001-01-09 08:00 for 7 hours: fired two hours in, resolved an hour after it ends
    assert lines[0].startswith("2001-01-09T10:00:00+00:00 fired    no2-high @ ")
    assert "NO2 above 100" in lines[0] and any(" resolved " in line for line in lines[1:])

    as_json = subprocess.run([*cli, str(rule), *window, "--json"], capture_output=True, text=True,  # noqa: ASYNC221
                             timeout=60)
    assert as_json.returncode == 0, as_json.stderr
    alerts = [json.loads(line) for line in as_json.stdout.splitlines()]
    mine = [a for a in alerts if a["group_key"] == source]
    assert [a["state"] for a in mine][:1] == ["fired"] and "resolved" in [a["state"] for a in mine]
    assert mine[0]["started_at"] == "2001-01-09T08:00:00Z" and mine[0]["alert_id"] == mine[-1]["alert_id"]
    assert mine[-1]["resolved_at"] is not None and "NO2 above 100" in mine[0]["message"]

    diff = subprocess.run([*cli, str(stricter), *window, "--diff"], capture_output=True, text=True,  # noqa: ASYNC221
                          timeout=60)
    assert diff.returncode == 0, diff.stderr
    removed = [line for line in diff.stdout.splitlines() if line.startswith("- ") and source in line]
    assert removed, diff.stdout  # the stricter rule does not fire on this episode

    broken = tmp_path / "broken.yaml"
    broken.write_text("id: Bad Id\ntitle: x\ncondition: {type: threshold, field: no2}\n")
    bad = subprocess.run([*cli, str(broken), *window], capture_output=True, text=True, timeout=60)  # noqa: ASYNC221
    assert bad.returncode == 1 and "broken.yaml:1:1: id:" in bad.stderr
    assert "give 'above' or 'below'" in bad.stderr
