"""A CityWatch worker as a subprocess, for end-to-end tests (killable, restartable)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEADLINE_S = 60.0


class Worker:
    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "citywatch", "--config", str(self.config), "worker"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def stops_within(self, bound_s: float) -> bool:
        """SIGTERM, then whether the worker exited by itself within `bound_s`."""
        assert self.process is not None
        self.process.terminate()
        started = time.monotonic()
        while self.process.poll() is None and time.monotonic() - started < bound_s:
            time.sleep(0.2)
        return self.process.poll() is not None

    def check_alive(self) -> None:
        assert self.process is not None and self.process.poll() is None, self.log.read_text()[-3000:]


async def until(what: str, check: Callable[[], Any], worker: Worker) -> Any:
    started = time.monotonic()
    while time.monotonic() - started < DEADLINE_S:
        worker.check_alive()
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n{worker.log.read_text()[-4000:]}")


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "citywatch", "--config", str(config), "rules", *args],
                          capture_output=True, text=True, timeout=60, check=False)


