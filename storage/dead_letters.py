"""Dead letters in TimescaleDB: stored once each, listed, shown, and marked when requeued.

The payload is kept whole up to MAX_PAYLOAD_BYTES (a frame is a few hundred kB; the original
stays on the dead-letter topic too), so what an operator requeues is the message itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from storage.connection import Connection

MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
_NAMESPACE = uuid.UUID("5b0f3c3e-7a0e-4a43-9d1f-2f8f3c7c9d11")
_CONTROL = {i: " " for i in range(32)} | {0x7F: " "}


@dataclass(frozen=True)
class DeadLetterRow:
    rejected_at: datetime
    origin_topic: str
    consumer: str
    reason: str
    payload: bytes
    origin_partition: int | None = None
    origin_offset: int | None = None
    source_id: str | None = None

    @property
    def id(self) -> uuid.UUID:
        """The same rejection of the same message is one row, however often it is delivered.
        Without a position (a source refused it before it reached a topic) the bytes decide."""
        where = (f"{self.origin_partition}:{self.origin_offset}" if self.origin_offset is not None
                 else f"{uuid.uuid5(_NAMESPACE, self.payload.hex())}:{self.reason}")
        return uuid.uuid5(_NAMESPACE, f"{self.origin_topic}|{where}|{self.consumer}")


def _text(value: str | None) -> str | None:
    """Text columns cannot hold NUL; a reason or source id may quote hostile input."""
    return None if value is None else value.replace("\x00", "\\x00")


async def store_dead_letters(connection: Connection | asyncpg.Pool, rows: list[DeadLetterRow]) -> int:
    """Insert what is new; returns how many rows were new."""
    if not rows:
        return 0
    status = await connection.execute(
        """INSERT INTO dead_letters (id, rejected_at, origin_topic, origin_partition, origin_offset, consumer,
                                     source_id, reason, payload, payload_size)
           SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::int[], $5::bigint[],
                                $6::text[], $7::text[], $8::text[], $9::bytea[], $10::int[])
           ON CONFLICT (id) DO NOTHING""",
        [r.id for r in rows], [r.rejected_at for r in rows], [_text(r.origin_topic) for r in rows],
        [r.origin_partition for r in rows], [r.origin_offset for r in rows],
        [_text(r.consumer) for r in rows],
        [_text(r.source_id) for r in rows], [_text(r.reason) for r in rows],
        [r.payload[:MAX_PAYLOAD_BYTES] for r in rows], [len(r.payload) for r in rows])
    return int(str(status).rsplit(" ", 1)[-1])


def preview(payload: bytes, limit: int = 160) -> str:
    """A printable glimpse of a payload: text where it is text, else hex."""
    head = payload[:limit]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return head[:limit // 2].hex(" ") + (" …" if len(payload) > limit // 2 else "")
    return text.translate(_CONTROL) + (" …" if len(payload) > limit else "")


async def list_dead_letters(
    connection: Connection | asyncpg.Pool, limit: int = 50, origin: str | None = None,
    consumer: str | None = None, pending_only: bool = False,
) -> list[dict[str, Any]]:
    rows = await connection.fetch(
        """SELECT id, rejected_at, origin_topic, origin_partition, origin_offset, consumer, source_id, reason,
                  substring(payload from 1 for 160) AS head, payload_size, requeued_at, requeued_by
             FROM dead_letters
            WHERE ($2::text IS NULL OR origin_topic = $2) AND ($3::text IS NULL OR consumer = $3)
              AND (NOT $4 OR requeued_at IS NULL)
            ORDER BY rejected_at DESC, id LIMIT $1""",
        limit, origin, consumer, pending_only)
    return [{**{k: v for k, v in row.items() if k != "head"}, "preview": preview(bytes(row["head"]))}
            for row in rows]


async def get_dead_letter(
    connection: Connection | asyncpg.Pool, letter_id: uuid.UUID
) -> dict[str, Any] | None:
    row = await connection.fetchrow("SELECT * FROM dead_letters WHERE id = $1", letter_id)
    return None if row is None else dict(row.items())


async def mark_requeued(connection: Connection | asyncpg.Pool, letter_id: uuid.UUID, by: str) -> bool:
    status = await connection.execute(
        "UPDATE dead_letters SET requeued_at = now(), requeued_by = $2 WHERE id = $1", letter_id, by)
    return str(status).endswith(" 1")
