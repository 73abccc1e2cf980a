"""Requeueing a dead letter: its stored bytes back to the topic they came from, once.

Shared by `citywatch deadletter requeue` and the console. Only a message that reached a
topic can go back to one; a body a source refused (HTTP, MQTT, a CSV row) is resent to its
receiver instead. The row records who requeued it and when.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from citywatch.publisher import Publisher
from citywatch.topics import ALL_TOPICS, TopicName, Topics
from storage.connection import Connection
from storage.dead_letters import get_dead_letter, mark_requeued


class CannotRequeue(ValueError):
    """This dead letter cannot be requeued; the text says why."""


def requeue_problem(row: dict[str, Any] | None, topics: Topics) -> str | None:
    if row is None:
        return "no such dead letter"
    if row["origin_offset"] is None or topics.short(row["origin_topic"]) not in ALL_TOPICS:
        return (f"refused by {row['consumer']} before it reached a topic; "
                "resend its payload (citywatch deadletter show --raw) to the receiver")
    if row["payload_size"] > len(row["payload"]):
        return "only part of the payload was kept"
    return None


async def requeue(db: Connection | Any, publisher: Publisher, topics: Topics, letter_id: uuid.UUID,
                  by: str) -> str:
    """Publish the dead letter back to its origin topic; returns that topic."""
    row = await get_dead_letter(db, letter_id)
    problem = requeue_problem(row, topics)
    if problem is not None or row is None:
        raise CannotRequeue(f"{letter_id}: {problem}")
    short = cast(TopicName, topics.short(row["origin_topic"]))
    await publisher.send(short, (row["source_id"] or "").encode(), bytes(row["payload"]),
                         [("requeued_from", str(letter_id).encode())])
    await mark_requeued(db, letter_id, by)
    return str(row["origin_topic"])
