"""Rule conditions, each a small class registered by its `type` in the `Condition` union."""

from collections.abc import Iterator

from rules.conditions.base import ConditionBase
from rules.conditions.composite import CompositeCondition, Condition
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
    RateOfChangeCondition,
    SpikeCondition,
)


def walk(condition: ConditionBase) -> Iterator[ConditionBase]:
    """The condition and every condition nested in it (composite parts, `of` filters)."""
    yield condition
    nested = getattr(condition, "of", None)
    if isinstance(nested, ConditionBase):
        yield from walk(nested)
    for part in getattr(condition, "conditions", ()):
        yield from walk(part)


__all__ = [
    "AbsenceCondition", "ChangeCondition", "CompositeCondition", "Condition", "ConditionBase",
    "DataQualityCondition", "DetectionCondition", "FrequencyCondition", "LineCrossingCondition",
    "RateOfChangeCondition", "SpikeCondition", "ThresholdCondition", "walk",
]
