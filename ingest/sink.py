"""Where sources put what they produce. One small interface, so adapters know nothing of Kafka."""

from __future__ import annotations

from typing import Literal, Protocol

from ingest.events import Event, Reading
from ingest.frame_codec import Frame
from ingest.rejected import Rejected

Stream = Literal["frames", "readings", "telemetry"]


class EventSink(Protocol):
    async def frame(self, frame: Frame) -> None: ...

    async def reading(self, reading: Reading) -> None: ...

    async def telemetry(self, event: Event) -> None:
        """Drone telemetry, source health and data-quality events."""
        ...

    async def rejected(self, item: Rejected, stream: Stream) -> None:
        """Input that could not become an event, with the reason (goes to the dead-letter topic)."""
        ...


class Source(Protocol):
    """What every adapter is: something that runs and puts what it produces into a sink."""

    async def run(self, sink: EventSink) -> None: ...


class MemorySink:
    """Collects everything; for tests, benchmarks and dry runs."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.readings: list[Reading] = []
        self.telemetry_events: list[Event] = []
        self.rejects: list[tuple[Rejected, Stream]] = []

    async def frame(self, frame: Frame) -> None:
        self.frames.append(frame)

    async def reading(self, reading: Reading) -> None:
        self.readings.append(reading)

    async def telemetry(self, event: Event) -> None:
        self.telemetry_events.append(event)

    async def rejected(self, item: Rejected, stream: Stream) -> None:
        self.rejects.append((item, stream))
