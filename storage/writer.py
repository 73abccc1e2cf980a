"""The batched, idempotent event writer.

The usual batch is new events: they go by binary COPY straight into the hypertable, the
fastest way in. When a batch holds an event already stored (a redelivery after a crash or
a rebalance: at-least-once), that COPY fails as a whole on the primary key and the batch
goes the careful way instead: COPY into a per-connection temporary staging table, then one
`INSERT ... SELECT ... ON CONFLICT DO NOTHING`, so every event is stored exactly once.

A table whose event id alone identifies a row (alert transitions: TableSpec.once_per_event_id)
always goes the careful way, keeping the earliest of the copies of a batch and none that is
stored already at another time; a transaction-scoped advisory lock per table makes that check
and the insert one step for concurrent writers. Such tables are small (alerts, not readings).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Sequence

import asyncpg

from ingest.events import Event
from storage.connection import Connection
from storage.rows import TABLES, TableSpec


class UnknownEventType(TypeError):
    pass


MIN_SLICE = 1000
"""Rows below which one more connection costs more than it saves."""


class EventWriter:
    """`connections`: a big batch of one table is split over this many pooled connections,
    written concurrently. The server's side of COPY (index upkeep above all) is what limits
    one connection; two use a second core (bench.storage measures both)."""

    def __init__(self, pool: asyncpg.Pool, connections: int = 2) -> None:
        if connections < 1:
            raise ValueError("the writer needs at least one connection")
        self.pool = pool
        self.connections = connections

    async def write(self, events: Iterable[Event]) -> int:
        """Store events; returns how many rows were new. When it raises, some slices may be
        stored and others not: writing the same events again stores each exactly once."""
        by_table: dict[str, list[Event]] = defaultdict(list)
        specs: dict[str, TableSpec] = {}
        for event in events:
            spec = TABLES.get(type(event))
            if spec is None:
                raise UnknownEventType(f"no table for {type(event).__name__}")
            specs[spec.table] = spec
            by_table[spec.table].append(event)
        slices = [(specs[table], part) for table, items in by_table.items() for part in self._slices(items)]
        if len(slices) == 1:
            return await self._write_on_a_connection(*slices[0])
        at_once = asyncio.Semaphore(self.connections)  # never more of the pool than that

        async def bounded(spec: TableSpec, part: list[Event]) -> int:
            async with at_once:
                return await self._write_on_a_connection(spec, part)

        return sum(await asyncio.gather(*(bounded(spec, part) for spec, part in slices)))

    def _slices(self, items: Sequence[Event]) -> list[list[Event]]:
        count = max(1, min(self.connections, len(items) // MIN_SLICE))
        size = -(-len(items) // count)
        return [list(items[i:i + size]) for i in range(0, len(items), size)]

    async def _write_on_a_connection(self, spec: TableSpec, items: list[Event]) -> int:
        async with self.pool.acquire() as connection:
            return await self._write_table(connection, spec, items)

    @staticmethod
    async def _write_table(connection: Connection, spec: TableSpec, items: list[Event]) -> int:
        if spec.once_per_event_id:
            return await _stage_and_insert(connection, spec, items, once_per_event_id=True)
        try:
            async with connection.transaction():
                # a generator: rows are converted while the server ingests the ones already sent
                await connection.copy_records_to_table(
                    spec.table, records=(spec.row(item) for item in items), columns=spec.columns)
            return len(items)
        except asyncpg.UniqueViolationError:
            pass  # some of these are stored already: the idempotent path below
        return await _stage_and_insert(connection, spec, items, once_per_event_id=False)


async def _stage_and_insert(connection: Connection, spec: TableSpec, items: list[Event], *,
                            once_per_event_id: bool) -> int:
    """COPY into a temporary staging table, then insert what is not stored yet."""
    stage = f"_stage_{spec.table}"
    columns = ", ".join(spec.columns)
    if once_per_event_id:
        select = (f"SELECT DISTINCT ON (event_id) {columns} FROM {stage} s WHERE NOT EXISTS"
                  f" (SELECT 1 FROM {spec.table} t WHERE t.event_id = s.event_id) ORDER BY event_id, time")
    else:
        select = f"SELECT {columns} FROM {stage}"
    async with connection.transaction():
        if once_per_event_id:
            await connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"citywatch.{spec.table}")
        await connection.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {spec.table}) ON COMMIT DELETE ROWS"
        )
        await connection.copy_records_to_table(stage, records=[spec.row(item) for item in items],
                                               columns=spec.columns)
        status = await connection.execute(
            f"INSERT INTO {spec.table} ({columns}) {select} ON CONFLICT DO NOTHING")
    return int(status.rsplit(" ", 1)[-1])
