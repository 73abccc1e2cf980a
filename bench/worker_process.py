"""The CityWatch worker as a child process of a benchmark: started with its log, stopped
with SIGTERM and, if it does not stop in time, killed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def start_worker(config: Path, log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "citywatch", "--config", str(config), "worker"],
            stdout=log, stderr=subprocess.STDOUT, env=env)


def stop_worker(worker: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    worker.terminate()
    try:
        worker.wait(timeout_s)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
