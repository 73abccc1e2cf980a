"""A bounded buffer between a source and a slow publisher, with an explicit policy.

`drop_oldest` keeps the freshest frames (live monitoring), `drop_newest` keeps the
earliest, `block` slows the source down (replays that must not lose anything).
Every drop is counted, so a slow pipeline shows up in health and metrics.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, Literal, TypeVar

Policy = Literal["drop_oldest", "drop_newest", "block"]
T = TypeVar("T")


class BoundedBuffer(Generic[T]):
    def __init__(self, capacity: int, policy: Policy) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.policy = policy
        self.dropped = 0
        self._items: deque[T] = deque()
        self._not_empty = asyncio.Condition()
        self._not_full = asyncio.Condition()
        self._unfinished = 0
        self._done = asyncio.Condition()

    def __len__(self) -> int:
        return len(self._items)

    async def put(self, item: T) -> None:
        if len(self._items) >= self.capacity:
            if self.policy == "drop_newest":
                self.dropped += 1
                return
            if self.policy == "drop_oldest":
                self._items.popleft()
                self.dropped += 1
                self._unfinished -= 1
            else:
                async with self._not_full:
                    await self._not_full.wait_for(lambda: len(self._items) < self.capacity)
        self._items.append(item)
        self._unfinished += 1
        async with self._not_empty:
            self._not_empty.notify()

    async def get(self) -> T:
        async with self._not_empty:
            await self._not_empty.wait_for(lambda: bool(self._items))
            item = self._items.popleft()
        async with self._not_full:
            self._not_full.notify()
        return item

    def task_done(self) -> None:
        """The consumer finished an item it got (for join)."""
        self._unfinished -= 1
        if self._unfinished <= 0:
            asyncio.get_running_loop().create_task(self._notify_done())

    async def _notify_done(self) -> None:
        async with self._done:
            self._done.notify_all()

    async def join(self) -> None:
        """Wait until every item put has been got and marked done (or dropped)."""
        async with self._done:
            await self._done.wait_for(lambda: self._unfinished <= 0)
