"""The console's API against its own OpenAPI schema, with schemathesis (a standard client
we did not write): every operation, with generated and edge-case inputs, as an admin.
No answer may be a 5xx, and every answer must match the schema the server publishes. The
seed is fixed so that CI is repeatable; run `schemathesis run` with others to look further."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from uuid import uuid4

import aiohttp
import asyncpg
import pytest

from citywatch.infra.process import free_port
from tests.console_helpers import make_user

pytestmark = pytest.mark.integration
DEADLINE_S = 60.0


async def wait_until_up(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    async with aiohttp.ClientSession() as session:
        while True:
            assert process.poll() is None, "the console exited"
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, f"{url} never answered"
            await asyncio.sleep(0.3)


async def test_every_api_operation_keeps_to_its_schema(
    tmp_path: Path, bootstrap: str, dsn: str, pg_pool: asyncpg.Pool,
) -> None:
    run, port = f"st{uuid4().hex[:8]}", free_port()
    config = tmp_path / "citywatch.yaml"
    config.write_text(f"""
broker: {{url: "kafka://{bootstrap}", topic_prefix: {run}, partitions: 1}}
storage: {{dsn: "{dsn}"}}
console: {{port: {port}}}
infra: {{state_dir: "{tmp_path / 'state'}"}}
rules: {{paths: ["{tmp_path / 'rules'}"]}}
""")
    (tmp_path / "rules").mkdir()
    admin = f"admin-{run}"
    await make_user(pg_pool, admin, "admin")
    cli = [sys.executable, "-m", "citywatch", "--config", str(config)]
    made = subprocess.run([*cli, "users", "token", "add", admin, "--role", "admin"],  # noqa: ASYNC221
                          capture_output=True, text=True, timeout=60, check=True)
    token = made.stdout.strip().split()[-1]
    environment = {"CITYWATCH_CONSOLE__SESSION_SECRET": uuid4().hex}

    console = subprocess.Popen([*cli, "console"], stderr=subprocess.DEVNULL, text=True,  # noqa: ASYNC220
                               env={**os.environ, **environment})
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_until_up(f"{base}/healthz", console)
        answer = subprocess.run(  # noqa: ASYNC221 - the standard client, run to its end
            [sys.executable, "-m", "schemathesis.cli", "run", f"{base}/openapi.json",
             "--header", f"Authorization: Bearer {token}", "--checks",
             "not_a_server_error,response_schema_conformance", "--max-examples", "15",
             "--include-path-regex", "^/api/", "--phases", "examples,coverage,fuzzing",
             "--request-timeout", "20", "--suppress-health-check", "all", "--seed", "20261202"],
            capture_output=True, text=True, timeout=900)
    finally:
        console.terminate()
        console.wait(timeout=30)
    assert answer.returncode == 0, answer.stdout[-8000:]
