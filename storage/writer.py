"""The batched, idempotent event writer.

The usual batch is new events: they go by binary COPY straight into the hypertable, the
fastest way in. When a batch holds an event already stored (a redelivery after a crash or
a rebalance: at-least-once), that COPY fails as a whole on the primary key and the batch
goes the careful way instead: COPY into a per-connection temporary staging table, then one
`INSERT ... SELECT ... ON CONFLICT DO NOTHING`, so every event is stored exactly once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import asyncpg

from ingest.events import Event
from storage.connection import Connection
from storage.rows import TABLES, TableSpec


class UnknownEventType(TypeError):
    pass


class EventWriter:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def write(self, events: Iterable[Event]) -> int:
        """Store events; returns how many rows were new. All-or-nothing per table."""
        by_table: dict[str, list[Event]] = defaultdict(list)
        specs: dict[str, TableSpec] = {}
        for event in events:
            spec = TABLES.get(type(event))
            if spec is None:
                raise UnknownEventType(f"no table for {type(event).__name__}")
            specs[spec.table] = spec
            by_table[spec.table].append(event)
        inserted = 0
        async with self.pool.acquire() as connection:
            for table, items in by_table.items():
                inserted += await self._write_table(connection, specs[table], items)
        return inserted

    @staticmethod
    async def _write_table(connection: Connection, spec: TableSpec, items: list[Event]) -> int:
        try:
            async with connection.transaction():
                # a generator: rows are converted while the server ingests the ones already sent
                await connection.copy_records_to_table(
                    spec.table, records=(spec.row(item) for item in items), columns=spec.columns)
            return len(items)
        except asyncpg.UniqueViolationError:
            pass  # some of these are stored already: the idempotent path below
        records = [spec.row(item) for item in items]
        stage = f"_stage_{spec.table}"
        columns = ", ".join(spec.columns)
        async with connection.transaction():
            await connection.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {spec.table}) ON COMMIT DELETE ROWS"
            )
            await connection.copy_records_to_table(stage, records=records, columns=spec.columns)
            status = await connection.execute(
                f"INSERT INTO {spec.table} ({columns}) SELECT {columns} FROM {stage} "
                "ON CONFLICT DO NOTHING"
            )
        return int(status.rsplit(" ", 1)[-1])
