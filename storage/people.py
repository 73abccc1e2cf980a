"""Console users and the audit log, as stored (hashing passwords is the console's job)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from storage.connection import Connection

Db = asyncpg.Pool | Connection


@dataclass(frozen=True)
class StoredUser:
    username: str
    password_hash: str
    role: str
    disabled: bool


async def upsert_user(db: Db, username: str, password_hash: str, role: str) -> None:
    await db.execute(
        "INSERT INTO console_users (username, password_hash, role) VALUES ($1, $2, $3)"
        " ON CONFLICT (username) DO UPDATE SET password_hash = $2, role = $3, disabled = false",
        username, password_hash, role)


async def find_user(db: Db, username: str) -> StoredUser | None:
    row = await db.fetchrow(
        "SELECT username, password_hash, role, disabled FROM console_users WHERE username = $1", username)
    return StoredUser(**dict(row)) if row is not None else None


async def update_hash(db: Db, username: str, password_hash: str) -> None:
    await db.execute("UPDATE console_users SET password_hash = $2 WHERE username = $1",
                     username, password_hash)


async def audit(
    db: Db, actor: str, action: str, target: str = "", detail: dict[str, Any] | None = None
) -> None:
    await db.execute("INSERT INTO audit_log (actor, action, target, detail) VALUES ($1, $2, $3, $4::jsonb)",
                     actor, action, target, json.dumps(detail or {}, default=str))


async def audit_entries(db: Db, limit: int = 100) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT time, actor, action, target, detail FROM audit_log ORDER BY time DESC LIMIT $1", limit)
    return [dict(row) for row in rows]
