"""Rule file versions and silences in TimescaleDB: every version (who, when, diff) and every
silence as it was set and lifted, for audit and for `citywatch rules history`.

A version identical to the file's latest one (a worker restarting republishes its folder)
is not a new version; going back to an older text is.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from rules.library import RuleFileVersion, SilenceChange
from rules.loader import parse_rules
from rules.yaml_source import YamlFileError
from storage.connection import Connection

_LATEST = "SELECT version, sha256, content FROM rule_versions WHERE name = $1 ORDER BY version DESC LIMIT 1"
_LIVE = ("SELECT sha256, content FROM rule_versions WHERE name = $1 AND accepted"
         " ORDER BY version DESC LIMIT 1")
_INSERT = (
    "INSERT INTO rule_versions"
    " (name, version, sha256, content, author, published_at, comment, diff, accepted, errors)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING"
)


def diff_of(name: str, before: str | None, after: str | None) -> str:
    lines = difflib.unified_diff(
        (before or "").splitlines(keepends=True), (after or "").splitlines(keepends=True),
        fromfile=f"a/{name}", tofile=f"b/{name}")
    return "".join(lines)


def _problems(version: RuleFileVersion) -> str:
    """Why the workers refuse this version (they validate the same way); empty if they accept it."""
    if version.content is None:
        return ""
    try:
        parse_rules(version.content, version.name)
    except YamlFileError as exc:
        return "\n".join(str(error) for error in exc.errors)
    return ""


async def record_rule_version(pool: asyncpg.Pool, version: RuleFileVersion) -> bool:
    """True when stored as a new version (refused ones too, marked so, with their errors)."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", version.name)
        return await _store_next(connection, version)


async def _store_next(connection: Connection, version: RuleFileVersion) -> bool:
    problems = _problems(version)
    latest = await connection.fetchrow(_LATEST, version.name)
    if latest is not None and latest["sha256"] == version.sha256:
        return False
    if latest is None and version.content is None:
        return False  # deleting a file never stored
    number = 1 if latest is None else latest["version"] + 1
    before = None if latest is None else latest["content"]
    await connection.execute(
        _INSERT, version.name, number, version.sha256, version.content, version.author,
        version.published_at, version.comment, diff_of(version.name, before, version.content),
        not problems, problems)
    return True


class StaleEdit(Exception):
    """The file changed since the editor opened it (or exists, for a draft of a new file)."""

    def __init__(self, name: str, live_sha256: str | None) -> None:
        self.name = name
        self.live_sha256 = live_sha256
        what = "already exists" if live_sha256 else "was deleted"
        super().__init__(f"{name} {what} or changed since you opened it: open it again and merge")


async def publish_edit(
    pool: asyncpg.Pool, version: RuleFileVersion, replaces: str | None,
    publish: Callable[[], Awaitable[None]],
) -> None:
    """Compare-and-set for editors, so one engineer never silently overwrites another's work:
    `replaces` is the sha256 of the live version the draft started from (None for a new file).
    Under the file's lock the live version is checked, the draft published, and recorded at
    once (the workers' own record of it is then a no-op), so the next editor sees it at once."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", version.name)
        live = await connection.fetchrow(_LIVE, version.name)
        live_sha256 = live["sha256"] if live is not None and live["content"] is not None else None
        if live_sha256 != replaces:
            raise StaleEdit(version.name, live_sha256)
        await publish()
        await _store_next(connection, version)


async def record_silence_change(pool: asyncpg.Pool, change: SilenceChange) -> None:
    async with pool.acquire() as connection:
        silence = change.silence
        if silence is None:
            await connection.execute(
                "UPDATE silences SET lifted_at = $2 WHERE id = $1 AND lifted_at IS NULL",
                change.id, change.at)
            return
        await connection.execute(
            "INSERT INTO silences (id, rule_id, group_key, until, reason, created_by, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (id) DO UPDATE SET rule_id = $2, group_key = $3, until = $4, reason = $5,"
            " created_by = $6, lifted_at = NULL",
            silence.id, silence.rule_id, silence.group_key, silence.until, silence.reason,
            silence.created_by, change.at)


async def rule_history(
    db: asyncpg.Pool | asyncpg.Connection, name: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT name, version, sha256, author, published_at, comment, diff, accepted, errors,"
        " content IS NULL AS deleted"
        " FROM rule_versions WHERE $1::text IS NULL OR name = $1 ORDER BY published_at DESC, version DESC"
        " LIMIT $2", name, limit)
    return [dict(row) for row in rows]


async def live_rule_files(db: asyncpg.Pool | asyncpg.Connection) -> dict[str, str]:
    """The latest text of every rule file not deleted: what the workers run."""
    rows = await db.fetch(
        "SELECT DISTINCT ON (name) name, content FROM rule_versions WHERE accepted"
        " ORDER BY name, version DESC")
    return {row["name"]: row["content"] for row in rows if row["content"] is not None}
