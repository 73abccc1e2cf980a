"""Console test helpers: users with roles, signing in through the real login form."""

from __future__ import annotations

import re

import asyncpg
from starlette.testclient import TestClient

from citywatch.console.auth import Role, hash_password
from storage.migrate import migrate
from storage.people import upsert_user

PASSWORD = "correct horse battery"


async def make_user(pool: asyncpg.Pool, name: str, role: Role) -> None:
    async with pool.acquire() as connection:
        await migrate(connection)
    await upsert_user(pool, name, hash_password(PASSWORD), role)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign in through the login form; returns the session's CSRF token for changes."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None, page.text
    form = {"username": name, "password": password, "csrf_token": token.group(1)}
    response = client.post("/login", data=form, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/", response.text
    feed = client.get("/")
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', feed.text)
    assert csrf is not None
    return csrf.group(1)
