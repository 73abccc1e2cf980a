"""Apply the plain-SQL migrations in order, once each, recorded in `schema_migrations`.

An advisory lock makes concurrent workers starting together safe: one applies,
the others wait and then find nothing left to do.
"""

from __future__ import annotations

from importlib import resources

from storage.connection import Connection

_LOCK_KEY = 0x63_77_6D_67  # 'cwmg'


def available_migrations() -> list[tuple[str, str]]:
    folder = resources.files("storage").joinpath("migrations")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


async def migrate(connection: Connection) -> list[str]:
    """Apply what is missing; return the names applied now."""
    applied_now: list[str] = []
    await connection.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await connection.fetch("SELECT version FROM schema_migrations")}
        for version, sql in available_migrations():
            if version in done:
                continue
            async with connection.transaction():
                await connection.execute(sql)
                await connection.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied_now.append(version)
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now
