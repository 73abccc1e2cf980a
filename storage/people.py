"""Console users and the audit log, as stored (hashing passwords is the console's job)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
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
    """Create a user, or set one's role and password (a reset): their sessions end, so a
    stolen cookie does not outlive the password it was signed in with."""
    await db.execute(
        "INSERT INTO console_users (username, password_hash, role) VALUES ($1, $2, $3)"
        " ON CONFLICT (username) DO UPDATE SET password_hash = $2, role = $3, disabled = false",
        username, password_hash, role)
    await db.execute("UPDATE console_sessions SET ended_at = now() WHERE username = $1 AND ended_at IS NULL",
                     username)


async def find_user(db: Db, username: str) -> StoredUser | None:
    row = await db.fetchrow(
        "SELECT username, password_hash, role, disabled FROM console_users WHERE username = $1", username)
    return StoredUser(**dict(row)) if row is not None else None


async def update_hash(db: Db, username: str, password_hash: str) -> None:
    await db.execute("UPDATE console_users SET password_hash = $2 WHERE username = $1",
                     username, password_hash)


async def disable_user(db: Db, username: str) -> bool:
    """True when the user existed; their sessions end and their tokens are revoked, so
    enabling the user again does not bring old tokens back."""
    status = await db.execute("UPDATE console_users SET disabled = true WHERE username = $1", username)
    await db.execute("UPDATE console_sessions SET ended_at = now() WHERE username = $1 AND ended_at IS NULL",
                     username)
    await db.execute("UPDATE api_tokens SET revoked_at = now() WHERE username = $1 AND revoked_at IS NULL",
                     username)
    return status != "UPDATE 0"


async def start_session(db: Db, session_id: str, username: str) -> None:
    """A new session; sessions older than a week (long expired) go at the same time."""
    await db.execute("DELETE FROM console_sessions WHERE created_at < now() - interval '7 days'")
    await db.execute("INSERT INTO console_sessions (id, username) VALUES ($1, $2)", session_id, username)


async def session_owner(db: Db, session_id: str, max_age_s: int) -> StoredUser | None:
    """The user of a live session (not ended, not older than `max_age_s`, user enabled)."""
    row = await db.fetchrow(
        "UPDATE console_sessions s SET last_seen_at = now() FROM console_users u"
        " WHERE s.id = $1 AND s.ended_at IS NULL AND u.username = s.username AND NOT u.disabled"
        " AND s.created_at > now() - make_interval(secs => $2)"
        " RETURNING u.username, u.password_hash, u.role, u.disabled", session_id, max_age_s)
    return StoredUser(**dict(row)) if row is not None else None


async def end_session(db: Db, session_id: str) -> None:
    await db.execute("UPDATE console_sessions SET ended_at = now() WHERE id = $1 AND ended_at IS NULL",
                     session_id)


@dataclass(frozen=True)
class StoredToken:
    id: str
    username: str
    secret_hash: str
    role: str
    user_role: str
    user_disabled: bool
    expires_at: datetime | None
    revoked_at: datetime | None


async def add_token(db: Db, token_id: str, username: str, secret_hash: str, role: str, label: str,
                    expires_at: datetime | None) -> None:
    await db.execute(
        "INSERT INTO api_tokens (id, username, secret_hash, role, label, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)", token_id, username, secret_hash, role, label, expires_at)


async def find_token(db: Db, token_id: str) -> StoredToken | None:
    row = await db.fetchrow(
        "SELECT t.id, t.username, t.secret_hash, t.role, u.role AS user_role, u.disabled AS user_disabled,"
        " t.expires_at, t.revoked_at FROM api_tokens t JOIN console_users u USING (username) WHERE t.id = $1",
        token_id)
    return StoredToken(**dict(row)) if row is not None else None


async def touch_token(db: Db, token_id: str) -> None:
    """When it was last used (at most once a minute: a busy script writes little)."""
    await db.execute("UPDATE api_tokens SET last_used_at = now() WHERE id = $1"
                     " AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')", token_id)


async def revoke_token(db: Db, token_id: str) -> bool:
    status = await db.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", token_id)
    return status != "UPDATE 0"


async def list_tokens(db: Db) -> list[dict[str, Any]]:
    rows = await db.fetch("SELECT id, username, role, label, created_at, expires_at, last_used_at, revoked_at"
                          " FROM api_tokens ORDER BY username, created_at")
    return [dict(row) for row in rows]


async def audit(
    db: Db, actor: str, action: str, target: str = "", detail: dict[str, Any] | None = None
) -> None:
    await db.execute("INSERT INTO audit_log (actor, action, target, detail) VALUES ($1, $2, $3, $4::jsonb)",
                     actor, action, target, json.dumps(detail or {}, default=str))


async def audit_entries(db: Db, limit: int = 100) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT time, actor, action, target, detail FROM audit_log ORDER BY time DESC LIMIT $1", limit)
    return [dict(row) for row in rows]
