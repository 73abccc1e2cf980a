"""Which models the rules need (rules/requirements.py), from what each condition declares."""

from __future__ import annotations

from typing import ClassVar, Literal

from detectors.events import Detection
from rules.base import EventTypes, Memory, Observation, Seen
from rules.conditions import ConditionBase
from rules.loader import parse_rules
from rules.model import Rule
from rules.requirements import detection_needs


def rules(text: str) -> list[Rule]:
    return parse_rules(text, "rules.yaml")


def test_named_models_classes_and_nested_parts_are_needed() -> None:
    found = detection_needs(rules("""
- id: fall
  title: Fall
  sources: {ids: [cam-1]}
  condition: {type: detection, model: fall, classes: [Fall]}
- id: crowding
  title: People keep coming
  sources: {ids: [cam-1]}
  condition: {type: frequency, of: {type: detection, classes: [person]}, count: 3, within: 1m}
- id: smoke
  title: Smoke
  sources: {ids: [aq-1]}
  condition: {type: threshold, field: pm25, above: 50}
"""), "cam-1", "camera")
    assert (found.models, found.classes, found.everything) == (frozenset({"fall"}), frozenset({"person"}),
                                                               False)
    assert found.wants("fall", []) and found.wants("yolo", ["person", "car"])
    assert not found.wants("cars", ["car"])


def test_a_line_crossing_of_anything_needs_every_model() -> None:
    found = detection_needs(rules("""
id: counted
title: Counted
sources: {ids: [cam-1]}
condition: {type: line_crossing, line: gate}
"""), "cam-1", "camera")
    assert found.everything and found.wants("cars", ["car"])


class NewDetectionCondition(ConditionBase):
    """A condition added later that reads detections and says nothing about models."""

    event_types: ClassVar[EventTypes] = (Detection,)
    type: Literal["new"] = "new"

    def observe(self, seen: Seen, memory: Memory) -> Observation | None:
        return None


def test_a_new_condition_that_reads_detections_is_never_pruned_by_omission() -> None:
    assert NewDetectionCondition().detection_need() is not None
    [rule] = rules("id: r\ntitle: t\nsources: {ids: [cam-1]}\ncondition: {type: detection, classes: [x]}\n")
    with_new = rule.model_copy(update={"condition": NewDetectionCondition()})
    assert detection_needs([with_new], "cam-1", "camera").everything
