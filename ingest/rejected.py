"""Input a source could not turn into an event, kept with the reason (for the dead-letter topic)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rejected:
    source_id: str
    reason: str
    raw: bytes
