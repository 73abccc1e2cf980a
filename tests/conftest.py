"""Shared fixtures. Integration fixtures start the real broker and TimescaleDB once per run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from citywatch.devservers.smtp import LocalSmtpServer
from citywatch.infra.manager import LocalInfra
from citywatch.infra.process import free_port
from storage.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"


def asset(relative: str) -> Path:
    path = CACHE / relative
    if not path.is_file():
        pytest.fail(f"{path} is missing: run the set-up (./dev.sh setup) first")
    return path


@pytest.fixture(scope="session")
def bus_jpg() -> Path:
    return asset("media/bus.jpg")


@pytest.fixture(scope="session")
def vtest_avi() -> Path:
    return asset("media/vtest.avi")


@pytest.fixture(scope="session")
def yolo_onnx() -> Path:
    return asset("models/yolov8n-coco.onnx")


@pytest.fixture(scope="session")
def aq_csv() -> Path:
    return asset("data/aq_data.csv.gz")


@pytest.fixture(scope="session")
def local_infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalInfra]:
    """A real Tansu broker and a real TimescaleDB on free ports, for the whole run."""
    state = tmp_path_factory.mktemp("infra")
    infra = LocalInfra.create(state, "127.0.0.1", free_port(), free_port())
    infra.up()
    try:
        yield infra
    finally:
        infra.down()


@pytest.fixture(scope="session")
def bootstrap(local_infra: LocalInfra) -> str:
    return f"127.0.0.1:{local_infra.broker.port}"


@pytest.fixture(scope="session")
def dsn(local_infra: LocalInfra) -> str:
    return local_infra.database.dsn


@pytest.fixture(scope="session")
async def pg_pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    assert pool is not None
    async with pool.acquire() as connection:
        await migrate(connection)
    yield pool
    await pool.close()


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[LocalSmtpServer]:
    """A real SMTP server (aiosmtpd) on a free port, started; mail kept under tmp_path/mail."""
    server = LocalSmtpServer("127.0.0.1", free_port(), tmp_path / "mail")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def private_pg_pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A database of this test's own, for tests whose queries sweep whole tables (the outbox):
    rows other tests left in the shared database must not be theirs to find."""
    name = f"private_{uuid4().hex[:12]}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    own_dsn = dsn.rsplit("/", 1)[0] + f"/{name}"
    pool = await asyncpg.create_pool(own_dsn, min_size=1, max_size=4)
    assert pool is not None
    try:
        async with pool.acquire() as connection:
            await connection.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            await migrate(connection)
        yield pool
    finally:
        await pool.close()
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real mosquitto on a free loopback port (installed by the set-up)."""
    import subprocess
    import time

    from citywatch.infra.process import port_accepts

    binary = Path("/usr/sbin/mosquitto")
    if not binary.exists():
        pytest.fail("mosquitto is not installed: run the set-up (./dev.sh setup) first")
    port = free_port()
    folder = tmp_path_factory.mktemp("mosquitto")
    conf = folder / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    log = (folder / "mosquitto.log").open("wb")
    process = subprocess.Popen([str(binary), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while not port_accepts("127.0.0.1", port):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail(f"mosquitto did not start: {(folder / 'mosquitto.log').read_text()}")
        time.sleep(0.05)
    yield "127.0.0.1", port
    process.terminate()
    process.wait(10)
    log.close()
