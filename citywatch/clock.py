"""The clock topic: ticks that move the one processing-time rule, absence (and escalations).

Data decisions never wait for a tick: they run on their keys' event time.

A Faust table can only be written while handling a message of the partition that owns the
key, so time cannot act from a timer directly. Instead each worker's timer sends a tick to
the clock partitions it consumes (one tick per partition per interval, however many workers
run); the agent that owns the partition handles it like any event and lets the engine act
on the states of that partition's sources. During a rebalance a partition may get two
ticks, or miss one, which is harmless: a tick with nothing due changes nothing, and alert
ids are deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache

from aiokafka.partitioner import murmur2

from ingest.events import EventFormatError


def encode_tick(now: datetime) -> bytes:
    return json.dumps({"tick": now.astimezone(UTC).isoformat()}).encode()


def decode_tick(raw: bytes) -> datetime:
    try:
        moment = datetime.fromisoformat(json.loads(raw)["tick"])
    except (ValueError, KeyError, TypeError) as exc:
        raise EventFormatError(f"not a clock tick: {exc}") from exc
    if moment.tzinfo is None:
        raise EventFormatError("a clock tick needs a time zone")
    return moment


@lru_cache(maxsize=65_536)  # asked for every key on every tick: hash each key once
def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as aiokafka and Faust use) picks."""
    hashed: int = murmur2(key.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def owner_of(partition: int, partitions: int) -> Callable[[str], bool]:
    """Whether a partition key (a source id, a rule id) belongs to `partition`."""
    return lambda key: partition_of(key, partitions) == partition
