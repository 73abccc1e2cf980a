"""Conditions over time: how often, how suddenly, how long silent, how fast a value moves.

Each keeps a bounded memory per rule and group key (the last N event times, a few time
buckets, the previous value), so a busy source costs the same memory as a quiet one.
Windows are in event time and move with the key's own events; absence alone runs on
arrival time and the worker's lag-aware clock (`on_time`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from detectors.events import Detection
from ingest.events import DataQuality, DroneTelemetry, Event, Reading, SourceHealth
from rules.base import EventTypes, Memory, Observation, Seen
from rules.conditions.base import ConditionBase, LimitCondition
from rules.conditions.instant import (
    DataQualityCondition,
    DetectionCondition,
    LineCrossingCondition,
    ThresholdCondition,
)
from rules.duration import Duration

InstantCondition = DetectionCondition | ThresholdCondition | LineCrossingCondition | DataQualityCondition
ANY_EVENT: tuple[type, ...] = (Detection, Reading, DataQuality, SourceHealth, DroneTelemetry)
DATA_EVENTS: tuple[type, ...] = (Detection, Reading, DroneTelemetry)
"""What a source measures. Its data-quality and health reports are about the data, not data:
a receiver's own "sensor missing" report must never end the silence an absence rule saw."""
US = 1_000_000


def field_value(event: Event, name: str) -> Any:
    """A reading's value (or 'aqi'), else a plain attribute of the event (battery_pct ...)."""
    if isinstance(event, Reading):
        return event.field(name)
    value = getattr(event, name, None)
    return value if isinstance(value, int | float | str | bool) else None


def _counts(of: InstantCondition | None, seen: Seen) -> bool | None:
    """Does this event count? None: the event is not one `of` looks at."""
    if of is None:
        return True
    observed = of.observe(seen, {})
    return None if observed is None else observed.holds


class FrequencyCondition(ConditionBase):
    """At least `count` events (those where `of` holds) within a sliding window."""

    type: Literal["frequency"]
    of: InstantCondition | None = Field(default=None, discriminator="type",
                                        description="count only events where this holds; empty: every event")
    count: int = Field(ge=1, le=10_000)
    within: Duration = Field(gt=0)

    def reads(self) -> EventTypes:
        return self.of.event_types if self.of is not None else ANY_EVENT

    def observe(self, seen: Seen, memory: Memory) -> Observation | None:
        counted = _counts(self.of, seen)
        if counted is None:
            return None
        if counted:  # kept in time order: an out-of-order event (within lateness) counts where it belongs
            memory["t"] = sorted([*memory.get("t", []), seen.now_us])[-self.count:]
        return self.on_time(memory, seen.now_us)

    def on_time(self, memory: Memory, now_us: int) -> Observation:
        kept = [t for t in memory.get("t", []) if t > now_us - self.within * US]
        memory["t"] = kept
        recent = [t for t in kept if t <= now_us]
        return Observation(holds=len(recent) >= self.count,
                           values={"events": len(recent), "within_s": self.within})


class AbsenceCondition(ConditionBase):
    """Fewer than `min_count` events within `within`: a dead sensor, a silent camera.
    Fires on time passing; sources listed by id are expected from the start, others once
    they have been seen."""

    type: Literal["absence", "flatline"]
    of: InstantCondition | None = Field(default=None, discriminator="type",
                                        description="count only events where this holds; empty: every event")
    within: Duration = Field(gt=0)
    min_count: int = Field(default=1, ge=1, le=10_000)

    def reads(self) -> EventTypes:
        return self.of.event_types if self.of is not None else DATA_EVENTS

    def observe(self, seen: Seen, memory: Memory) -> Observation | None:
        if self.of is None and not isinstance(seen.event, DATA_EVENTS):
            return None  # a report about the source, not data from it
        counted = _counts(self.of, seen)
        memory.setdefault("from", seen.now_us)
        if counted:
            memory["t"] = [*memory.get("t", []), seen.now_us][-self.min_count:]
        return self.on_time(memory, seen.now_us)

    def on_time(self, memory: Memory, now_us: int) -> Observation:
        window_start = now_us - self.within * US
        recent = [t for t in memory.get("t", []) if t > window_start]
        watched_long_enough = memory.get("from", now_us) <= window_start
        last = max(memory.get("t", []), default=None)
        return Observation(holds=watched_long_enough and len(recent) < self.min_count,
                           values={"events": len(recent), "within_s": self.within,
                                   "silent_s": None if last is None else round((now_us - last) / US, 1)})


class SpikeCondition(ConditionBase):
    """The last `window` against the `reference` before it: event counts (where `of` holds)
    or a reading field's mean went up (or down) by `factor`."""

    type: Literal["spike"]
    of: InstantCondition | None = Field(default=None, discriminator="type")
    field: str | None = Field(default=None, description="compare this field's mean instead of counts")
    window: Duration = Field(gt=0)
    reference: Duration = Field(gt=0, description="the period just before the window")
    factor: float = Field(default=2.0, gt=1)
    direction: Literal["up", "down"] = "up"
    min_reference_events: int = Field(default=1, ge=1)
    buckets: int = Field(default=12, ge=2, le=120, description="time resolution of window and reference")

    @model_validator(mode="after")
    def _counts_or_field(self) -> SpikeCondition:
        if self.field is not None and self.of is not None:
            raise ValueError("give 'of' (compare counts) or 'field' (compare means), not both")
        return self

    def reads(self) -> EventTypes:
        if self.of is not None:
            return self.of.event_types
        return (Reading,) if self.field is not None else ANY_EVENT

    @property
    def _bucket_us(self) -> int:
        return max(1, int(min(self.window, self.reference) * US / self.buckets))

    def observe(self, seen: Seen, memory: Memory) -> Observation | None:
        memory.setdefault("from", seen.now_us)
        if self.field is not None:
            value = field_value(seen.event, self.field)
            if not isinstance(value, int | float) or isinstance(value, bool):
                return None
            amount = float(value)
        else:
            counted = _counts(self.of, seen)
            if counted is None:
                return None
            amount = 0.0
            if not counted:
                return self.on_time(memory, seen.now_us)
        bucket = str(seen.now_us // self._bucket_us)
        slot = memory.setdefault("b", {}).setdefault(bucket, [0, 0.0])
        slot[0] += 1
        slot[1] += amount
        return self.on_time(memory, seen.now_us)

    def on_time(self, memory: Memory, now_us: int) -> Observation:
        size = self._bucket_us
        now_bucket = now_us // size
        window_from = now_bucket - int(self.window * US / size)
        reference_from = window_from - int(self.reference * US / size)
        buckets = {k: v for k, v in memory.get("b", {}).items() if int(k) > reference_from}
        memory["b"] = buckets
        current = [v for k, v in buckets.items() if int(k) > window_from]
        before = [v for k, v in buckets.items() if int(k) <= window_from]
        n_now, n_ref = sum(v[0] for v in current), sum(v[0] for v in before)
        if self.field is not None:
            now_level = sum(v[1] for v in current) / n_now if n_now else None
            ref_level = sum(v[1] for v in before) / n_ref if n_ref else None
        else:
            now_level, ref_level = n_now / self.window, n_ref / self.reference
        values = {"window": now_level, "reference": ref_level, "reference_events": n_ref}
        watched_from = memory.get("from", now_us)
        if now_us - watched_from < (self.window + self.reference) * US:
            return Observation(holds=False, values=values)  # no full reference period yet
        if now_level is None or ref_level is None or n_ref < self.min_reference_events:
            return Observation(holds=False, values=values)
        if self.direction == "up":
            holds = now_level >= self.factor * ref_level and now_level > ref_level
        else:
            holds = now_level * self.factor <= ref_level and now_level < ref_level
        return Observation(holds=holds, values=values)


class ChangeCondition(ConditionBase):
    """A field's value changed from the previous event of the same key (a status flipped,
    a reading jumped by at least `min_delta`)."""

    event_types: ClassVar[EventTypes] = (Reading, SourceHealth, DroneTelemetry, DataQuality)
    type: Literal["change"]
    field: str = Field(min_length=1)
    min_delta: float = Field(default=0.0, ge=0, description="numbers: the least change that counts")

    def observe(self, seen: Seen, memory: Memory) -> Observation | None:
        value = field_value(seen.event, self.field)
        if value is None:
            return None
        had = "v" in memory
        previous = memory.get("v")
        memory["v"] = value
        if not had:
            return Observation(holds=False, values={self.field: value})
        numbers = isinstance(value, int | float) and isinstance(previous, int | float)
        if numbers and not isinstance(value, bool):
            changed = abs(value - previous) > self.min_delta or (self.min_delta == 0 and value != previous)
        else:
            changed = value != previous
        return Observation(holds=changed, values={self.field: value, "previous": previous})


class RateOfChangeCondition(LimitCondition):
    """How fast a field moves, in units per `per`, measured across `over` (or between
    consecutive events): e.g. PM2.5 rising faster than 20 µg/m³ per 10 minutes."""

    event_types: ClassVar[EventTypes] = (Reading, DroneTelemetry)
    type: Literal["rate_of_change"]
    field: str = Field(min_length=1)
    per: Duration = Field(default=60.0, gt=0)
    over: Duration = Field(
        default=0.0, description="measure from the oldest sample this recent; 0: the last one")

    def observe(self, seen: Seen, memory: Memory) -> Observation | None:
        value = field_value(seen.event, self.field)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        samples = [s for s in memory.get("s", []) if s[0] < seen.now_us]
        if self.over:
            samples = [s for s in samples if s[0] >= seen.now_us - self.over * US] or samples[-1:]
        else:
            samples = samples[-1:]
        memory["s"] = [*samples, [seen.now_us, float(value)]][-64:]
        if not samples:
            return Observation(holds=False, values={self.field: value})
        first_time, first_value = samples[0]
        rate = (float(value) - first_value) / ((seen.now_us - first_time) / US) * self.per
        holds = self.beyond(rate)
        return Observation(holds=holds, values={self.field: value, "rate": round(rate, 6), "per_s": self.per})


class MeanCondition(LimitCondition):
    """A field's mean over the last `over` of event time above and/or below a limit: how
    air-quality limits are written (PM2.5's daily mean above 15 µg/m³, NO2's hourly mean
    above 200). Readings are summed into 24 slices of the window, so memory stays bounded
    however often a sensor reports, and the window is exact to one slice. The mean counts
    only once `min_coverage` of the slices hold a reading (the EU's 75 % data capture): a
    sensor that reported twice today does not decide a daily mean."""

    SLICES: ClassVar[int] = 24
    event_types: ClassVar[EventTypes] = (Reading, DroneTelemetry)
    type: Literal["mean"]
    field: str = Field(min_length=1)
    over: Duration = Field(gt=0, description="the averaging period, e.g. 24h, 1h, 8h")
    min_coverage: float = Field(default=0.75, gt=0, le=1,
                                description="share of the period's slices that must hold a reading")

    def observe(self, seen: Seen, memory: Memory) -> Observation | None:
        value = field_value(seen.event, self.field)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        width = self._width_us()
        index = seen.now_us // width
        slices: list[list[float]] = memory.get("b", [])
        for entry in slices:
            if entry[0] == index:
                entry[1] += float(value)
                entry[2] += 1
                break
        else:
            slices = sorted([*slices, [index, float(value), 1]])
        newest = int(slices[-1][0])
        memory["b"] = [entry for entry in slices if entry[0] > newest - self.SLICES]
        return self.on_time(memory, seen.now_us)

    def on_time(self, memory: Memory, now_us: int) -> Observation | None:
        current = now_us // self._width_us()
        window = [entry for entry in memory.get("b", []) if current - self.SLICES < entry[0] <= current]
        if not window:
            return Observation(holds=False, values={})
        samples = int(sum(entry[2] for entry in window))
        mean = sum(entry[1] for entry in window) / samples
        coverage = len(window) / self.SLICES
        values = {self.field: round(mean, 6), "samples": samples, "coverage": round(coverage, 3),
                  "over_s": self.over}
        return Observation(holds=coverage >= self.min_coverage and self.beyond(mean), values=values)

    def _width_us(self) -> int:
        return max(1, int(self.over * US) // self.SLICES)
