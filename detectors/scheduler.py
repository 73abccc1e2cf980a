"""Micro-batching per model: frames from any source queue up; a batch goes when it is full
or when its oldest frame has waited `max_wait_ms` (DeepStream's nvstreammux, in asyncio).

One scheduler per model, each with its own worker thread, so different models run at
the same time while each model sees batches as large as the traffic allows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from detectors.base import Detector, Image
from detectors.events import Box

BatchObserver = Callable[[str, int, float], None]  # model, batch size, seconds


@dataclass
class _Request:
    image: Image
    future: asyncio.Future[tuple[list[Box], float]]
    queued_at: float


class BatchScheduler:
    def __init__(self, detector: Detector, batch_size: int, max_wait_ms: float,
                 observer: BatchObserver | None = None) -> None:
        self.detector = detector
        self.batch_size = batch_size
        self.max_wait_s = max_wait_ms / 1000
        self.observer = observer
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model-{detector.name}")
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.frames = 0

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    async def infer(self, image: Image) -> tuple[list[Box], float]:
        """Boxes for one image, and this image's share of the batch's inference time (ms)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        future: asyncio.Future[tuple[list[Box], float]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Request(image, future, time.monotonic()))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = batch[0].queued_at + self.max_wait_s
            while len(batch) < self.batch_size:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(
                    self._executor, self.detector.infer_batch, [r.image for r in batch])
            except Exception as exc:
                if len(batch) == 1:
                    if not batch[0].future.done():
                        batch[0].future.set_exception(exc)
                    continue
                # one image may have tripped the model: each alone, so only that one fails
                for request in batch:
                    await self._alone(loop, request)
                continue
            elapsed = time.perf_counter() - started
            self.batches += 1
            self.frames += len(batch)
            if self.observer is not None:
                self.observer(self.detector.name, len(batch), elapsed)
            share_ms = elapsed * 1000 / len(batch)
            for request, boxes in zip(batch, results, strict=True):
                if not request.future.done():
                    request.future.set_result((boxes, share_ms))

    async def _alone(self, loop: asyncio.AbstractEventLoop, request: _Request) -> None:
        started = time.perf_counter()
        try:
            [boxes] = await loop.run_in_executor(self._executor, self.detector.infer_batch, [request.image])
        except Exception as exc:
            if not request.future.done():
                request.future.set_exception(exc)
            return
        if not request.future.done():
            request.future.set_result((boxes, (time.perf_counter() - started) * 1000))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=False)
