"""detect: frames → the detection engine → detections.

Frames are taken in micro-batches (the schedulers batch across sources). A frame that
cannot be parsed, is too large or that a model fails on is dead-lettered alone; the
other frames of its batch, other cameras' included, are detected as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from citywatch import metrics
from citywatch.agents.context import AgentContext
from citywatch.agents.policy import isolating
from ingest.events import EventFormatError
from ingest.frame_codec import Frame, decode_frame

NAME = "detect"
FRAME_BATCH_WITHIN_S = 0.05


def register(ctx: AgentContext) -> None:
    batch_size = max((m.batch_size for m in ctx.settings.models), default=1)

    async def detect_batch(items: Sequence[tuple[Any, Frame]]) -> None:
        engine = await ctx.runtime.engine()
        by_frame = {id(frame): event for event, frame in items}
        result = await engine.run([frame for _, frame in items])
        for frame, reason in result.rejected:
            await ctx.dead_letter(by_frame[id(frame)], reason, NAME)
        # In frame-time order per source, whatever order the models finished in: the rules
        # take each camera's detections as one stream in event time (rules.timekeeping).
        for detection in sorted(result.detections, key=lambda d: d.time):
            await ctx.send(NAME, "detections", detection.source_id.encode(), detection.to_json())

    async def reject(item: tuple[Any, Frame], reason: str) -> None:
        await ctx.dead_letter(item[0], reason, NAME)

    @ctx.app.agent(ctx.topic("frames"), name=NAME)
    async def detect(stream: Any) -> None:
        # Acknowledged by hand after the batch (see store.py: take_events acks on cancellation).
        async for events in stream.noack_take(batch_size, within=FRAME_BATCH_WITHIN_S):
            await ctx.runtime.rules_ready()  # which models a frame needs depends on the rules (pruning)
            metrics.MESSAGES.labels(NAME).inc(len(events))
            frames: list[tuple[Any, Frame]] = []
            for event in events:
                try:
                    frames.append((event, decode_frame(event.value or b"")))
                except EventFormatError as exc:
                    await ctx.dead_letter(event, str(exc), NAME)
            await isolating(frames, detect_batch, reject, NAME, "detecting")
            for event in events:
                await stream.ack(event)
