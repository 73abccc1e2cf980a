"""The batched, idempotent event writer.

Rows go by binary COPY into a per-connection temporary staging table, then one
`INSERT ... SELECT ... ON CONFLICT DO NOTHING` moves them into the hypertable. COPY
is the fastest way in; the staging step makes it idempotent, so an event delivered
twice (at-least-once) is stored once.
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
        by_spec: dict[str, tuple[TableSpec, list[Event]]] = {}
        grouped: dict[type, list[Event]] = defaultdict(list)
        for event in events:
            grouped[type(event)].append(event)
        for event_type, items in grouped.items():
            spec = TABLES.get(event_type)
            if spec is None:
                raise UnknownEventType(f"no table for {event_type.__name__}")
            by_spec[spec.table] = (spec, items)
        inserted = 0
        async with self.pool.acquire() as connection:
            for spec, items in by_spec.values():
                inserted += await self._write_table(connection, spec, items)
        return inserted

    @staticmethod
    async def _write_table(connection: Connection, spec: TableSpec, items: list[Event]) -> int:
        stage = f"_stage_{spec.table}"
        columns = ", ".join(spec.columns)
        async with connection.transaction():
            await connection.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {spec.table}) ON COMMIT DELETE ROWS"
            )
            await connection.copy_records_to_table(
                stage, records=[spec.row(item) for item in items], columns=spec.columns
            )
            status = await connection.execute(
                f"INSERT INTO {spec.table} ({columns}) SELECT {columns} FROM {stage} "
                "ON CONFLICT DO NOTHING"
            )
        return int(status.rsplit(" ", 1)[-1])
