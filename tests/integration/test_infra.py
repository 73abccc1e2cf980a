"""The local infrastructure manager against the real Tansu and PostgreSQL binaries."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from citywatch.infra.manager import LocalInfra
from citywatch.infra.process import InfraError, free_port
from citywatch.infra.timescale import LocalTimescale

pytestmark = pytest.mark.integration


async def test_session_infra_is_healthy_and_timescaledb_is_loaded(local_infra: LocalInfra, dsn: str) -> None:
    status = local_infra.status()
    assert status["tansu"]["healthy"] and status["timescaledb"]["healthy"]
    connection = await asyncpg.connect(dsn)
    try:
        version = await connection.fetchval("SELECT extversion FROM pg_extension WHERE extname='timescaledb'")
        listen = await connection.fetchval("SHOW listen_addresses")
    finally:
        await connection.close()
    assert version and version.startswith("2.")
    assert listen == "127.0.0.1"


def test_port_in_use_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        infra = LocalInfra.create(tmp_path, "127.0.0.1", port, free_port())
        started = time.monotonic()
        with pytest.raises(InfraError, match=f"port 127.0.0.1:{port} for the broker is already in use"):
            infra.up()
        assert time.monotonic() - started < 5
    assert infra.status()["tansu"]["pid"] is None


def test_cli_up_status_down_stops_exactly_what_it_started(tmp_path: Path) -> None:
    config = tmp_path / "citywatch.yaml"
    config.write_text(f"infra:\n  state_dir: {tmp_path / 'state'}\n  broker_port: {free_port()}\n"
                      f"  db_port: {free_port()}\n")
    cli = [sys.executable, "-m", "citywatch", "--config", str(config), "infra"]
    up = subprocess.run([*cli, "up"], capture_output=True, text=True, timeout=120)
    try:
        assert up.returncode == 0, up.stderr
        assert "kafka://127.0.0.1" in up.stdout and "postgresql://" in up.stdout
        status = subprocess.run([*cli, "status"], capture_output=True, text=True, timeout=30)
        assert status.returncode == 0, status.stdout
        assert (tmp_path / "state" / "logs" / "tansu.log").exists()
        pids = [int(p.read_text()) for p in (tmp_path / "state").glob("*.pid")]
        assert len(pids) == 2
    finally:
        down = subprocess.run([*cli, "down"], capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    after = subprocess.run([*cli, "status"], capture_output=True, text=True, timeout=30)
    assert after.returncode == 1
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


async def test_down_is_fast_with_open_sessions_and_removes_the_cluster_wherever_it_lived(
    tmp_path: Path,
) -> None:
    state = tmp_path / "private"
    state.mkdir(mode=0o700)  # like pytest's and the benches' folders: postgres cannot reach it
    infra = LocalInfra.create(state, "127.0.0.1", free_port(), free_port())
    infra.up()
    cluster = Path((state / "timescaledb.cluster").read_text().strip())
    try:
        assert cluster.is_dir()  # noqa: ASYNC240
        if os.geteuid() == 0:
            assert cluster.is_relative_to("/var/lib/citywatch")  # it had to live elsewhere
        session = await asyncpg.connect(infra.database.dsn)  # a client that never leaves
        stopped = infra.down()
        log = infra.database.daemon.log_tail(40)
        assert "received fast shutdown request" in log  # not smart: it waits for every client
        assert "database system is shut down" in log  # and finished before any SIGKILL
        assert stopped == {"timescaledb": True, "tansu": True, "removed_data": True}
        assert not cluster.exists() and not cluster.parent.exists()  # noqa: ASYNC240
        with contextlib.suppress(Exception):
            await session.close(timeout=1)
    finally:
        infra.down()


def test_a_stale_postmaster_pid_after_an_unclean_stop_is_recovered(tmp_path: Path) -> None:
    database = LocalTimescale(tmp_path / "db", "127.0.0.1", free_port())
    database.start()
    try:
        pid = database.daemon.pid()
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)  # an unclean stop: postmaster.pid stays behind
        lock = database.cluster_dir() / "data" / "postmaster.pid"
        deadline = time.monotonic() + 30
        while database.daemon.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lock.exists()
        lines = lock.read_text().splitlines()
        lock.write_text("\n".join([str(os.getpid()), *lines[1:]]) + "\n")  # the pid now someone else's
        database.start()
        assert database.healthy()
    finally:
        database.remove()
