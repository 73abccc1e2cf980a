"""A throwaway local TimescaleDB for a benchmark: started in a temporary folder, migrated,
and removed with its data afterwards (a bench leaves nothing behind)."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from citywatch.infra.manager import LocalInfra
from citywatch.infra.process import free_port
from storage.migrate import migrate


@asynccontextmanager
async def scratch_database(prefix: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh, migrated database; long statements allowed (bulk generation)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        infra = LocalInfra.create(Path(folder), "127.0.0.1", free_port(), free_port())
        infra.database.start()
        try:
            pool = await asyncpg.create_pool(infra.database.dsn, min_size=1, max_size=2, command_timeout=3600)
            assert pool is not None
            try:
                async with pool.acquire() as connection:
                    await migrate(connection)
                yield pool
            finally:
                await pool.close()
        finally:
            infra.down()
