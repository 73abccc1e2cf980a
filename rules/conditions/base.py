"""The contract every condition keeps, and the fields they share.

A condition is a small pydantic model registered by its `type` in the `Condition` union.
`observe` looks at one event (with the condition's own memory for this rule and group
key); `on_time` re-decides at a later time with nothing new seen (absence on the worker's
clock; windows re-deciding as they move). Both return None when they have no opinion, so
the engine keeps the last decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pydantic import Field, model_validator

from detectors.events import Detection
from rules.base import EventTypes, Memory, Observation, Seen, StrictModel
from rules.duration import Duration
from rules.selection import SourceSelector


@dataclass(frozen=True)
class DetectionNeed:
    """What a condition needs the detectors to run on the frames of its rule's sources."""

    model: str | None = None  # only this model's detections
    classes: frozenset[str] = frozenset()  # with no model: any model reporting one of these; none: any


class ConditionBase(StrictModel):
    event_types: ClassVar[EventTypes] = ()

    for_: Duration = Field(default=0.0, alias="for", description="must hold this long before firing")
    sources: SourceSelector | None = Field(
        default=None, description="inside a composite: which sources this part watches")

    def reads(self) -> EventTypes:
        """The event types this condition (and its parts) reads: the engine offers it nothing else."""
        return self.event_types

    def detection_need(self) -> DetectionNeed | None:
        """Which models must run for this condition (rules/requirements.py); None: it reads no
        detections. The default follows the condition's own event types: one that reads
        detections and does not say which gets every model, since a model run for nothing
        costs energy, but a pruned one leaves a rule that never fires. Conditions that only
        filter through a nested part (`of`, composites) read nothing themselves: the part
        declares its own need."""
        return DetectionNeed() if Detection in type(self).event_types else None

    def observe(self, seen: Seen, memory: Memory) -> Observation | None:
        raise NotImplementedError

    def on_time(self, memory: Memory, now_us: int) -> Observation | None:
        return None


class LimitCondition(ConditionBase):
    """A value above and/or below a limit (a threshold, a rate of change): at least one."""

    above: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> LimitCondition:
        if self.above is None and self.below is None:
            raise ValueError("give 'above' or 'below' (or both)")
        return self

    def beyond(self, value: float) -> bool:
        above, below = self.above, self.below
        return (above is not None and value > above) or (below is not None and value < below)
