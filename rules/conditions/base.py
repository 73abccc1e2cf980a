"""The contract every condition keeps, and the fields they share.

A condition is a small pydantic model registered by its `type` in the `Condition` union.
`observe` looks at one event (with the condition's own memory for this rule and group
key); `on_time` re-decides at a later time with nothing new seen (absence on the worker's
clock; windows re-deciding as they move). Both return None when they have no opinion, so
the engine keeps the last decision.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from rules.base import EventTypes, Memory, Observation, Seen, StrictModel
from rules.duration import Duration
from rules.selection import SourceSelector


class ConditionBase(StrictModel):
    event_types: ClassVar[EventTypes] = ()

    for_: Duration = Field(default=0.0, alias="for", description="must hold this long before firing")
    sources: SourceSelector | None = Field(
        default=None, description="inside a composite: which sources this part watches")

    def reads(self) -> EventTypes:
        """The event types this condition (and its parts) reads: the engine offers it nothing else."""
        return self.event_types

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
