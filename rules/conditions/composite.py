"""Composites: all / any / sequence of conditions within a window, on one source or across
sources by distance ("smoke seen by a camera AND PM2.5 rising at a sensor within 500 m
within 10 minutes").

On one source, the parts share the rule's group key and each keeps its own memory. Across
sources (`near_m`), the composite remembers recent matches of each part with where and
when they happened, and holds for every match of the first part (the anchor) that the
other parts confirm close enough in space and time; the anchor's source is the group key,
so two incidents in different districts are two alerts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from rules import geo
from rules.base import EventType, EventTypes, Memory, Observation, Seen
from rules.conditions.base import ConditionBase
from rules.conditions.instant import (
    DataQualityCondition,
    DetectionCondition,
    LineCrossingCondition,
    ThresholdCondition,
)
from rules.conditions.windowed import (
    AbsenceCondition,
    ChangeCondition,
    FrequencyCondition,
    MeanCondition,
    RateOfChangeCondition,
    SpikeCondition,
)
from rules.duration import Duration

US = 1_000_000
MAX_MATCHES_PER_PART = 32


class CompositeCondition(ConditionBase):
    type: Literal["all", "any", "sequence"]
    conditions: list[Condition] = Field(min_length=2, max_length=16)
    within: Duration = Field(
        default=0.0, description="all/sequence: the parts must hold within this window (0: at the same time)")
    near_m: float | None = Field(
        default=None, gt=0,
        description="parts may come from different sources this close to the first part's")

    @model_validator(mode="after")
    def _coherent(self) -> CompositeCondition:
        if self.type == "sequence" and not self.within:
            raise ValueError("a sequence needs 'within' (how long the whole sequence may take)")
        if self.near_m is not None and self.type == "any":
            raise ValueError("'near_m' joins parts across sources; it needs 'all' or 'sequence'")
        if self.near_m is not None and not self.within:
            raise ValueError("'near_m' needs 'within' (how close in time the parts must be)")
        return self

    @property
    def across_sources(self) -> bool:
        return self.near_m is not None

    def reads(self) -> EventTypes:
        types: list[EventType] = []
        for part in self.conditions:
            types.extend(t for t in part.reads() if t not in types)
        return tuple(types)

    def looks_at(self, seen: Seen) -> bool:
        """Whether some part reads this event from this source: across sources, only such
        events are forwarded to the rule (not every reading of the city)."""
        return bool(self._parts_for(seen))

    def _parts_for(self, seen: Seen) -> list[tuple[int, ConditionBase]]:
        event_type = type(seen.event)
        return [(i, part) for i, part in enumerate(self.conditions)
                if event_type in part.reads() and (part.sources is None or part.sources.matches(seen))]

    # -- on one source ------------------------------------------------------------------

    def observe(self, seen: Seen, memory: Memory) -> Observation | None:
        observed = False
        for i, part in self._parts_for(seen):
            result = part.observe(seen, memory.setdefault(f"c{i}", {}))
            if result is not None:
                observed = True
                self._note(memory, i, part, result, seen.now_us)
        return self._decide(memory, seen.now_us) if observed else None

    def on_time(self, memory: Memory, now_us: int) -> Observation | None:
        """The key's time moved on an event no part looked at: windows move, parts re-decide."""
        for i, part in enumerate(self.conditions):
            result = part.on_time(memory.setdefault(f"c{i}", {}), now_us)
            if result is not None:
                self._note(memory, i, part, result, now_us)
        return self._decide(memory, now_us) if memory else None

    def _note(self, memory: Memory, i: int, part: ConditionBase, result: Observation, now_us: int) -> None:
        """`since`: the parts holding now, and since when; `held`: when each part last held
        (for at least its own `for`); `seq`: the times of the sequence's steps so far."""
        since = memory.setdefault("since", {})
        if not result.holds:
            since.pop(str(i), None)
            return
        start = since.setdefault(str(i), now_us)
        if now_us - start < part.for_ * US:
            return
        memory.setdefault("held", {})[str(i)] = now_us
        memory.setdefault("values", {})[str(i)] = result.values
        if self.type == "sequence":
            steps: list[int] = memory.setdefault("seq", [])
            if steps and now_us - steps[0] > self.within * US:
                steps.clear()
            if i == len(steps):  # the next step in order (the first when none yet)
                steps.append(now_us)

    def _holding_now(self, memory: Memory, i: int) -> bool:
        since, held = memory.get("since", {}), memory.get("held", {})
        return str(i) in since and held.get(str(i), -1) >= since[str(i)]

    def _decide(self, memory: Memory, now_us: int) -> Observation:
        parts = range(len(self.conditions))
        values = {"parts": [memory.get("values", {}).get(str(i)) for i in parts]}
        if self.type == "any":
            return Observation(holds=any(self._holding_now(memory, i) for i in parts), values=values)
        if self.type == "all":
            if self.within:
                fresh_from = now_us - self.within * US
                held: dict[str, int] = memory.get("held", {})
                holds = all(held.get(str(i), -1) >= fresh_from for i in parts)
            else:
                holds = all(self._holding_now(memory, i) for i in parts)
            return Observation(holds=holds, values=values)
        steps = memory.get("seq", [])
        complete = len(steps) == len(self.conditions) and now_us - steps[0] <= self.within * US
        if steps and now_us - steps[0] > self.within * US:
            memory["seq"] = []
        return Observation(holds=complete, values=values)

    # -- across sources ---------------------------------------------------------------

    def observe_area(self, seen: Seen, memory: Memory) -> dict[str, Observation] | None:
        """Per anchor source: does a full match hold? None when no part looked at the event."""
        observed = False
        for i, part in self._parts_for(seen):
            result = part.observe(seen, memory.setdefault("c", {}).setdefault(f"{i}|{seen.source_id}", {}))
            if result is None:
                continue
            observed = True
            if result.holds and seen.place is not None:
                matches = memory.setdefault("m", {}).setdefault(str(i), [])
                matches.append([seen.now_us, seen.source_id, seen.place[0], seen.place[1],
                                seen.event_id, result.values])
                del matches[:-MAX_MATCHES_PER_PART]
        return self.area_on_time(memory, seen.now_us) if observed else None

    def area_on_time(self, memory: Memory, now_us: int) -> dict[str, Observation]:
        fresh_from = now_us - self.within * US
        matches: dict[str, list[list[Any]]] = {
            k: [m for m in v if m[0] >= fresh_from] for k, v in memory.get("m", {}).items()}
        memory["m"] = matches
        decisions: dict[str, Observation] = {}
        for anchor in matches.get("0", []):
            chosen = self._confirm(anchor, matches)
            source = anchor[1]
            if chosen is not None:
                decisions[source] = Observation(
                    holds=True, evidence=tuple(m[4] for m in chosen),
                    values={"parts": [{"source": m[1], "time_us": m[0], **m[5]} for m in chosen]})
            else:
                decisions.setdefault(source, Observation(holds=False))
        for source in memory.get("anchors", []):
            decisions.setdefault(source, Observation(holds=False))
        memory["anchors"] = sorted(s for s, d in decisions.items() if d.holds)
        return decisions

    def _confirm(self, anchor: list[Any], matches: dict[str, list[list[Any]]]) -> list[list[Any]] | None:
        chosen = [anchor]
        near_m = self.near_m or 0.0
        for i in range(1, len(self.conditions)):
            after = chosen[-1][0] if self.type == "sequence" else None
            candidates = [
                m for m in matches.get(str(i), [])
                if (after is None or m[0] >= after)
                and abs(m[0] - anchor[0]) <= self.within * US
                and geo.distance_m((anchor[2], anchor[3]), (m[2], m[3])) <= near_m
            ]
            if not candidates:
                return None
            chosen.append(min(candidates, key=lambda m: m[0]) if self.type == "sequence" else candidates[-1])
        return chosen


Condition = Annotated[
    DetectionCondition | ThresholdCondition | LineCrossingCondition | DataQualityCondition
    | FrequencyCondition | AbsenceCondition | SpikeCondition | ChangeCondition | RateOfChangeCondition
    | MeanCondition | CompositeCondition,
    Field(discriminator="type"),
]
"""Every condition type, chosen by its `type` key."""

CompositeCondition.model_rebuild()
