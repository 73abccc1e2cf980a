"""What the enabled rules need from the detectors, per source: which classes, which models.

The detection engine asks this before running a model on a frame, so a model no rule
looks at for that source costs nothing (energy saving by design, not by tuning).
Each condition declares what it needs (ConditionBase.detection_need), so a new condition
that reads detections is never pruned by an oversight here. Conditions nested in composites
and windows count too; a nested part's own source selector is not consulted, so the answer
errs on the side of running a model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rules.base import SourceInfo
from rules.conditions import walk
from rules.model import Rule

NO_INFO = SourceInfo()


@dataclass(frozen=True)
class DetectionNeeds:
    classes: frozenset[str]
    models: frozenset[str]  # models named by rules (a rule without a model accepts any)
    everything: bool = False  # a rule takes any class from any model (a line crossing of anything)

    def wants(self, model: str, model_classes: Iterable[str]) -> bool:
        """A rule names this model, or a rule without a model wants one of its classes."""
        return self.everything or model in self.models or bool(self.classes & set(model_classes))


def detection_needs(
    rules: Iterable[Rule], source_id: str, kind: str, info: SourceInfo = NO_INFO
) -> DetectionNeeds:
    classes: set[str] = set()
    models: set[str] = set()
    everything = False
    for rule in rules:
        if not rule.enabled or not rule.sources.matches_source(source_id, kind, info):
            continue
        for condition in walk(rule.condition):
            need = condition.detection_need()  # each condition declares it (conditions/base.py)
            if need is None:
                continue
            if need.model is not None:
                models.add(need.model)
            elif need.classes:
                classes.update(need.classes)
            else:
                everything = True
    return DetectionNeeds(frozenset(classes), frozenset(models), everything)
