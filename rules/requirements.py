"""What the enabled rules need from the detectors, per source: which classes, which models.

The detection engine asks this before running a model on a frame, so a model no rule
looks at for that source costs nothing (energy saving by design, not by tuning).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rules.model import DetectionCondition, Rule


@dataclass(frozen=True)
class DetectionNeeds:
    classes: frozenset[str]
    models: frozenset[str]  # models named by rules (a rule without a model accepts any)

    def wants(self, model: str, model_classes: Iterable[str]) -> bool:
        """A rule names this model, or a rule without a model wants one of its classes."""
        return model in self.models or bool(self.classes & set(model_classes))


def detection_needs(rules: Iterable[Rule], source_id: str, kind: str) -> DetectionNeeds:
    classes: set[str] = set()
    models: set[str] = set()
    for rule in rules:
        condition = rule.condition
        if not rule.enabled or not isinstance(condition, DetectionCondition):
            continue
        if not rule.sources.matches(source_id, kind):
            continue
        if condition.model is not None:
            models.add(condition.model)
        else:
            classes.update(condition.classes)
    return DetectionNeeds(frozenset(classes), frozenset(models))
