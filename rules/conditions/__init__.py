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
    for _, found in located(condition):
        yield found


def located(condition: ConditionBase, where: tuple[int | str, ...] = ("condition",),
            ) -> Iterator[tuple[tuple[int | str, ...], ConditionBase]]:
    """Like walk, with each condition's keys in its rule (for errors at their line)."""
    yield where, condition
    nested = getattr(condition, "of", None)
    if isinstance(nested, ConditionBase):
        yield from located(nested, (*where, "of"))
    for index, part in enumerate(getattr(condition, "conditions", ())):
        yield from located(part, (*where, "conditions", index))


__all__ = [
    "AbsenceCondition", "ChangeCondition", "CompositeCondition", "Condition", "ConditionBase",
    "DataQualityCondition", "DetectionCondition", "FrequencyCondition", "LineCrossingCondition",
    "RateOfChangeCondition", "SpikeCondition", "ThresholdCondition", "located", "walk",
]
