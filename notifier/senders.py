"""A pool of SMS sender numbers, each with its own rate limit (segments per second).

Carriers throttle per number (a long code about 1 segment/s, toll-free about 3/s): a busy
night with one number queues; several numbers share the load. The pool hands out the
sender that is free soonest and waits only as long as that one needs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Sender:
    number: str
    segments_per_s: float = 1.0
    free_at: float = field(default=0.0)


class SenderPool:
    def __init__(self, senders: list[Sender], clock: Callable[[], float] = time.monotonic) -> None:
        if not senders:
            raise ValueError("an SMS sender pool needs at least one number")
        self.senders = senders
        self._clock = clock
        self._lock = asyncio.Lock()

    async def acquire(self, segment_count: int) -> str:
        """A sender number for a message of `segment_count` segments, after waiting for it."""
        async with self._lock:
            now = self._clock()
            sender = min(self.senders, key=lambda s: max(s.free_at, now))
            start = max(sender.free_at, now)
            sender.free_at = start + segment_count / sender.segments_per_s
        wait = start - now
        if wait > 0:
            await asyncio.sleep(wait)
        return sender.number
