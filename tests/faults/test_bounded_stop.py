"""SIGTERM stops a worker within its stop timeout even when an agent is stuck on a message
(Faust's own stop would wait for that message for ever), and says why it exited."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaProducer

from citywatch.bounded_worker import EXIT_STOP_TIMED_OUT

pytestmark = [pytest.mark.integration]

STOP_TIMEOUT_S = 3.0
DEADLINE_S = 60.0


def start(bootstrap: str, topic: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.faults.stuck_agent_worker", bootstrap, topic, str(STOP_TIMEOUT_S)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


async def test_sigterm_stops_a_worker_stuck_on_a_message(tmp_path: Path, bootstrap: str) -> None:
    topic = f"stuck{uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"anything")
    finally:
        await producer.stop()
    log = tmp_path / "worker.log"
    worker = start(bootstrap, topic, log)
    try:
        started = time.monotonic()
        while "stuck on a message" not in log.read_text():
            assert worker.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() - started < DEADLINE_S, f"no message came\n{log.read_text()[-3000:]}"
            await asyncio.sleep(0.2)
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, DEADLINE_S)
        assert code == EXIT_STOP_TIMED_OUT, log.read_text()[-3000:]
        assert f"did not stop within {STOP_TIMEOUT_S:.0f} s" in log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
