"""How the rules keep time: allowed lateness per source kind, and the lag-aware clock absence uses.

Data decisions run on each key's own event time (its watermark: the latest event time the
key has seen). An event older than its key's watermark by more than the allowed lateness
of its source kind is late: it is stored and counted, never evaluated, so a decision that
was taken is never re-taken out of order. Within the allowed lateness the key holds its
decisions back by that much event time and takes them in event-time order, so moderate
disorder is corrected; the price is that decisions wait for the watermark to pass them.
Zero (the default) decides at once and calls every out-of-order event late.

Absence is the one processing-time decision: a source is silent when nothing of it has
*arrived* for a while, measured on a clock that stops while the pipeline itself is behind.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from ingest.events import DataQuality, Event
from ingest.source_registry import SOURCE_KINDS

US = 1_000_000


class AllowedLateness(BaseModel):
    """Seconds of event time an out-of-order event may trail its key's newest one and still
    be evaluated (in order); decisions wait this long in event time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera: float = Field(default=0.0, ge=0, le=3600, description="frames and their detections")
    drone: float = Field(default=0.0, ge=0, le=3600, description="drone frames and telemetry")
    sensor: float = Field(default=0.0, ge=0, le=86_400, description="air-quality and other readings")

    def us(self, kind: str) -> int:
        """In microseconds, for a source kind; kinds without a setting get none."""
        seconds = getattr(self, kind, 0.0) if kind in ("camera", "drone", "sensor") else 0.0
        return int(seconds * US)


def absence_clock(now_us: int, behind: list[int | None]) -> int | None:
    """Processing time as far as the pipeline has seen it: `now_us` when every input partition
    is caught up; else the arrival time of the newest record processed on the lagging ones
    (the least of them), so silence is never inferred from data still waiting in the log.
    `behind` holds, per lagging partition, that arrival time (None: nothing processed yet,
    nothing can be concluded: None)."""
    if not behind:
        return now_us
    if any(arrived is None for arrived in behind):
        return None
    return min(min(a for a in behind if a is not None), now_us)


LATE_MARK = uuid.UUID("3b9d6f0e-5d0c-4a55-9a4e-2f1f4d7c8e21")


def late_mark(event: Event, behind_us: int, lateness_us: int) -> DataQuality:
    """The record that an event came too late to be evaluated: stored beside it (in time), so
    the console shows it and a replay of stored history skips the event as live did. Its id
    is derived from the event's, so a redelivered late event is marked once."""
    kind = getattr(event, "kind", None)
    return DataQuality(
        event_id=uuid.uuid5(LATE_MARK, str(event.event_id)), source_id=event.source_id, time=event.time,
        source_kind=kind if kind in SOURCE_KINDS else None, issue="late", active=True,
        about_event=event.event_id,
        detail=(f"{type(event).__name__} {event.event_id} came {behind_us / US:.1f} s behind its rules' "
                f"watermark (allowed lateness {lateness_us / US:g} s): stored, not evaluated"),
    )
