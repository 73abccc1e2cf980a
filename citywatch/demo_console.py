"""The demo shows the product: the operator console, started beside the worker, with a
demo operator and a demo rule editor to sign in as.

Their passwords are random, made once and kept in `<infra.state_dir>/demo-accounts.json`
(readable by this user only), and printed when the demo starts: never in the settings or
the JSON summary. A console that cannot start (its port taken) is said, not fatal: the
pipeline still runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg

from citywatch.console.auth import hash_password
from storage.people import upsert_user

DEMO_ACCOUNTS = {"demo-operator": "operator", "demo-editor": "rule_editor"}
CONSOLE_START_S = 45.0


def accounts_file(state_dir: Path) -> Path:
    return state_dir / "demo-accounts.json"


async def ensure_demo_accounts(connection: asyncpg.Connection, state_dir: Path) -> dict[str, str]:
    """name -> password: the kept ones, or new ones; the users set to them (idempotent)."""
    path = accounts_file(state_dir)
    kept: dict[str, str] = {}
    if path.is_file():
        kept = {k: v for k, v in json.loads(path.read_text()).items() if k in DEMO_ACCOUNTS}
    accounts = {name: kept.get(name) or secrets.token_urlsafe(12) for name in DEMO_ACCOUNTS}
    if accounts != kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(accounts, indent=2) + "\n")
        path.chmod(0o600)
    for name, role in DEMO_ACCOUNTS.items():
        await upsert_user(connection, name, hash_password(accounts[name]), role)
    return accounts


def start_console(config: Path, log_file: Path) -> subprocess.Popen[bytes]:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "citywatch", "--config", str(config), "console"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "CITYWATCH_CONSOLE__DEV_PAGES": "true"},  # the demo's outbox page
            start_new_session=True)


async def wait_healthy(url: str, process: subprocess.Popen[bytes],
                       deadline_s: float = CONSOLE_START_S) -> bool:
    """Whether the console answers /healthz before it exits or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                async with session.get(f"{url}/healthz", timeout=aiohttp.ClientTimeout(total=2)) as answer:
                    if answer.status == 200:
                        return True
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.3)
    return False
