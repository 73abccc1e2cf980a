"""`citywatch demo --duration N --json`, as a user runs it: own infrastructure, dev servers,
worker subprocess; settings come from the repository's citywatch.yaml with the ports and
folders moved by CITYWATCH_* environment overrides so it cannot clash with anything."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from citywatch.infra.process import free_port

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_everything_and_reports_counts(tmp_path: Path) -> None:
    broker, db, smtp, twilio, console = (free_port() for _ in range(5))
    state = tmp_path / "state"
    env = {
        **os.environ,
        "CITYWATCH_INFRA__STATE_DIR": str(state),
        "CITYWATCH_INFRA__BROKER_PORT": str(broker),
        "CITYWATCH_INFRA__DB_PORT": str(db),
        "CITYWATCH_BROKER__URL": f"kafka://127.0.0.1:{broker}",
        "CITYWATCH_STORAGE__DSN": f"postgresql://postgres@127.0.0.1:{db}/citywatch",
        "CITYWATCH_DEVSERVERS__SMTP_PORT": str(smtp),
        "CITYWATCH_DEVSERVERS__TWILIO_PORT": str(twilio),
        "CITYWATCH_DEVSERVERS__MAIL_DIR": str(tmp_path / "mail"),
        "CITYWATCH_DEVSERVERS__SMS_FILE": str(tmp_path / "sms.jsonl"),
        "CITYWATCH_CHANNELS__EMAIL__PORT": str(smtp),
        "CITYWATCH_CHANNELS__SMS__API_BASE_URL": f"http://127.0.0.1:{twilio}",
        "CITYWATCH_CONSOLE__PORT": str(console),
    }
    result = subprocess.run(
        [sys.executable, "-m", "citywatch", "--config", str(ROOT / "citywatch.yaml"), "demo",
         "--duration", "45", "--json"],
        capture_output=True, text=True, env=env, timeout=240, check=False,
    )
    log = (state / "logs" / "worker.log")
    assert result.returncode == 0, result.stderr[-3000:] + (log.read_text()[-3000:] if log.exists() else "")
    summary = json.loads(result.stdout)
    for key in ("frames_ingested", "readings", "detections", "alerts_fired", "emails_received",
                "sms_received"):
        assert summary[key] > 0, (key, summary)
    assert all(summary["rows"][t] > 0 for t in ("readings", "detections", "alerts", "notifications"))
    assert summary["dead_letters"] == 0
    assert len((tmp_path / "sms.jsonl").read_text().splitlines()) == summary["sms_received"]
    assert "stopped the local infrastructure" in result.stderr
    # the product itself: the console ran beside the worker, with two demo accounts to sign in as
    assert summary["console_url"] == f"http://127.0.0.1:{console}"
    accounts = json.loads(Path(summary["console_accounts"]).read_text())
    assert set(accounts) == {"demo-operator", "demo-editor"}
    assert f"demo-operator / {accounts['demo-operator']}" in result.stderr  # printed once, at the start
    assert accounts["demo-operator"] not in result.stdout  # never in the JSON summary
    assert not list(state.glob("*.pid")) or all(not p.read_text().strip() for p in state.glob("*.pid"))
