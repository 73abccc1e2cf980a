"""The engine with fake models (what ran, on what, batched how) and with YOLO on vtest.avi."""

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from detectors.base import Detector, Image
from detectors.config import StepSpec, WhenSpec
from detectors.engine import DetectionEngine, ModelRuntime
from detectors.events import Box
from detectors.scene import SceneSpec
from ingest.events import FrameHeader
from ingest.frame_codec import Frame
from ingest.jpeg import encode_jpeg

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FakeModel(Detector):
    """Finds `label` at a fixed place in every image (or none); records batch sizes and shapes."""

    def __init__(self, name: str, label: str | None,
                 box: tuple[float, float, float, float] = (10, 10, 50, 90)) -> None:
        self.name, self.version = name, "1"
        self.label, self.box = label, box
        self.batches: list[int] = []
        self.shapes: list[tuple[int, ...]] = []

    def load(self) -> None:
        pass

    @property
    def classes(self) -> Sequence[str]:
        return [self.label or "none"]

    def infer_batch(self, images: Sequence[Image]) -> list[list[Box]]:
        self.batches.append(len(images))
        self.shapes += [image.shape for image in images]
        if self.label is None:
            return [[] for _ in images]
        x1, y1, x2, y2 = self.box
        return [[Box(label=self.label, class_id=0, score=0.9, x1=x1, y1=y1, x2=x2, y2=y2)] for _ in images]


def frame(source: str = "cam-1", seconds: float = 0.0, image: Image | None = None) -> Frame:
    picture = np.full((120, 160, 3), 90, np.uint8) if image is None else image
    header = FrameHeader(source_id=source, time=T0 + timedelta(seconds=seconds), sequence=0,
                         width=picture.shape[1], height=picture.shape[0])
    return Frame(header, encode_jpeg(picture, 90))


async def test_cascade_runs_only_where_the_first_model_fired() -> None:
    person, fall = FakeModel("person", "person"), FakeModel("fall", "Fall", (2, 2, 20, 30))
    nothing, fall_b = FakeModel("person", None), FakeModel("fall", "Fall")
    steps = [StepSpec(model="person"),
             StepSpec(model="fall", when=WhenSpec(model="person", classes=["person"], regions=True, pad=0))]
    engine = DetectionEngine({"person": ModelRuntime(person), "fall": ModelRuntime(fall)}, lambda _: steps)
    result = await engine.run([frame()])
    assert sorted(d.model for d in result.detections) == ["fall", "person"]
    assert fall.shapes == [(81, 41, 3)]  # the crop around the person box, not the frame
    fall_box = next(d for d in result.detections if d.model == "fall").boxes[0]
    assert (fall_box.x1, fall_box.y1) == (12.0, 12.0)  # mapped back into frame coordinates

    quiet = DetectionEngine({"person": ModelRuntime(nothing), "fall": ModelRuntime(fall_b)}, lambda _: steps)
    result = await quiet.run([frame()])
    assert [d.model for d in result.detections] == ["person"] and fall_b.batches == []
    assert quiet.stats.skipped == {"fall:cascade": 1}


async def test_stride_filters_and_unknown_frames() -> None:
    model = FakeModel("m", "car")
    steps = [StepSpec(model="m", stride=3, classes=["car"], min_area=100)]
    engine = DetectionEngine({"m": ModelRuntime(model, batch_size=1)}, lambda _: steps)
    ran = [len((await engine.run([frame(seconds=i)])).detections) for i in range(6)]
    assert ran == [1, 0, 0, 1, 0, 0] and engine.stats.skipped == {"m:stride": 4}
    small = DetectionEngine({"m": ModelRuntime(FakeModel("m", "car", (0, 0, 5, 5)))},
                            lambda _: [StepSpec(model="m", min_area=100)])
    assert (await small.run([frame()])).detections[0].boxes == ()
    bad = Frame(frame().header, b"\xff\xd8 broken")
    reasons = [reason for _, reason in (await engine.run([bad])).rejected]
    assert reasons == ["corrupt JPEG: no marker at byte 2"]


async def test_frames_from_many_sources_are_micro_batched() -> None:
    model = FakeModel("m", "car")
    engine = DetectionEngine({"m": ModelRuntime(model, batch_size=4, max_wait_ms=200)})
    await asyncio.gather(*(engine.run([frame(source=f"cam-{i}")]) for i in range(8)))
    assert model.batches == [4, 4]
    await engine.close()


async def test_tracks_zones_lines_and_speed() -> None:
    scene = SceneSpec(zones={"crossing": ((0, 0), (90, 0), (90, 120), (0, 120))},
                      lines={"gate": ((60, 0), (60, 120))}, m_per_px=0.05)

    class Walker(FakeModel):
        def infer_batch(self, images: Sequence[Image]) -> list[list[Box]]:
            x = 20.0 + 15 * len(self.shapes)
            self.shapes.append(images[0].shape)
            return [[Box(label="person", class_id=0, score=0.9, x1=x, y1=20, x2=x + 30, y2=100)]]

    walker = ModelRuntime(Walker("m", "person"), batch_size=1)
    engine = DetectionEngine({"m": walker}, scene_for=lambda _: scene)
    events = [(await engine.run([frame(seconds=i)])).detections[0] for i in range(5)]
    boxes = [e.boxes[0] for e in events]
    assert {b.track_id for b in boxes} == {1}
    # feet at x = 35, 50, 65, 80, then 95: outside the zone; the gate at x = 60 is passed once
    assert [b.zones for b in boxes] == [("crossing",)] * 4 + [()]
    assert boxes[1].speed_px_s == 15.0 and boxes[1].speed_m_s == 0.75
    assert boxes[3].dwell_s == 3.0
    crossings = [c for e in events for c in e.crossings]
    assert [(c.line, c.track_id, c.direction) for c in crossings] == [("gate", 1, "right_to_left")]


async def test_yolo_tracks_people_in_vtest_with_stable_ids(yolo_onnx: Path, vtest_avi: Path) -> None:
    from detectors.config import OnnxYoloModel
    from detectors.registry import build_detector

    yolo = build_detector(OnnxYoloModel(name="yolo", path=yolo_onnx, device="cpu", min_score=0.4))
    yolo.load()
    engine = DetectionEngine({"yolo": ModelRuntime(yolo)},
                             lambda _: [StepSpec(model="yolo", classes=["person"])])
    capture = cv2.VideoCapture(str(vtest_avi))
    detections = []
    for i in range(20):  # 2 s of video at 10 fps, every frame
        ok, image = capture.read()
        assert ok
        detections.append((await engine.run([frame(seconds=i / 10, image=image)])).detections[0])
    capture.release()
    first_ids = {b.track_id for b in detections[0].boxes}
    last_ids = {b.track_id for b in detections[-1].boxes}
    assert len(first_ids) >= 3
    assert len(first_ids & last_ids) >= 0.6 * len(first_ids)  # most people keep their id for 2 s
    await engine.close()


async def test_models_no_rule_needs_are_not_run(tmp_path: Path) -> None:
    from detectors.snapshots import FolderSnapshots, SnapshotTaker
    from rules.loader import parse_rules
    from rules.requirements import detection_needs

    rules = parse_rules("""
- id: crowd
  title: Crowd
  sources: {ids: [cam-1]}
  condition: {type: detection, classes: [person], min_count: 1}
- id: falls
  title: Fall
  sources: {ids: [cam-2]}
  condition: {type: detection, model: fall, classes: [Fall]}
""", "rules.yaml")
    person, cars, fall = FakeModel("person", "person"), FakeModel("cars", "car"), FakeModel("fall", "Fall")
    steps = [StepSpec(model="person"), StepSpec(model="cars"),
             StepSpec(model="fall", when=WhenSpec(model="person", classes=["person"]))]
    engine = DetectionEngine(
        {"person": ModelRuntime(person), "cars": ModelRuntime(cars), "fall": ModelRuntime(fall)},
        lambda _: steps, demand_for=lambda source: detection_needs(rules, source, "camera"),
        snapshots=SnapshotTaker(FolderSnapshots(tmp_path), min_interval_s=10))
    first = await engine.run([frame("cam-1", seconds=0)])
    assert [d.model for d in first.detections] == ["person"]  # no rule wants cars or the fall model here
    second = await engine.run([frame("cam-2", seconds=0)])
    assert sorted(d.model for d in second.detections) == ["fall", "person"]  # fall needs person first
    assert cars.batches == [] and engine.stats.skipped["cars:rules"] == 2
    # evidence: one snapshot per source per 10 s, only for what rules look at
    [snap] = [d.snapshot for d in first.detections]
    assert snap is not None and cv2.imread(snap) is not None  # a real JPEG on disk
    later = await engine.run([frame("cam-1", seconds=3)])
    assert later.detections[0].snapshot is None
    assert next(d for d in second.detections if d.model == "fall").snapshot is not None
    assert next(d for d in second.detections if d.model == "person").snapshot is None


class UnreachableStore:
    """A snapshot sink whose database is down, or does not answer."""

    def __init__(self, hangs: bool) -> None:
        self.hangs, self.tries = hangs, 0

    async def keep(self, detection: Any, jpeg: bytes) -> str:
        self.tries += 1
        if self.hangs:
            await asyncio.Event().wait()
        raise ConnectionRefusedError("database down")


@pytest.mark.parametrize("hangs", [False, True])
async def test_a_snapshot_store_that_is_away_costs_the_picture_not_the_detection(
    hangs: bool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from detectors import snapshots
    from detectors.snapshots import SnapshotTaker
    from rules.loader import parse_rules
    from rules.requirements import detection_needs

    rules = parse_rules("""
- id: crowd
  title: Crowd
  sources: {ids: [cam-1]}
  condition: {type: detection, classes: [person], min_count: 1}
""", "rules.yaml")

    monkeypatch.setattr(snapshots, "KEEP_TIMEOUT_S", 0.05)
    store = UnreachableStore(hangs)
    engine = DetectionEngine({"person": ModelRuntime(FakeModel("person", "person"))},
                             lambda _: [StepSpec(model="person")],
                             demand_for=lambda source: detection_needs(rules, source, "camera"),
                             snapshots=SnapshotTaker(store, min_interval_s=0))
    result = await engine.run([frame("cam-1", seconds=0)])
    assert store.tries == 1 and [(d.model, d.snapshot) for d in result.detections] == [("person", None)]
    await engine.close()


async def test_shadow_model_agreement_is_recorded() -> None:
    from detectors.config import ShadowSpec
    from detectors.engine import box_agreement

    same, shifted = FakeModel("v1", "car"), FakeModel("v2", "car", (30, 30, 70, 110))
    steps = [StepSpec(model="v1", shadow=ShadowSpec(model="v2", every=2))]
    engine = DetectionEngine({"v1": ModelRuntime(same), "v2": ModelRuntime(shifted)}, lambda _: steps)
    for i in range(4):
        result = await engine.run([frame(seconds=i)])
        assert [d.model for d in result.detections] == ["v1"]  # the candidate emits nothing
    assert engine.stats.shadow == {"v1->v2": [0.0, 0.0]} and len(shifted.batches) == 2
    a = Box(label="car", class_id=0, score=0.9, x1=0, y1=0, x2=10, y2=10)
    b = a.model_copy(update={"x1": 1.0})
    assert box_agreement([a], [b], 0.5) == 1.0 and box_agreement([], [], 0.5) == 1.0
    assert box_agreement([a, a], [b], 0.5) == 0.5


async def test_detections_carry_the_position_of_their_frame() -> None:
    from ingest.events import GeoPoint

    engine = DetectionEngine({"m": ModelRuntime(FakeModel("m", "person"))})
    plain = frame()
    header = plain.header.model_copy(update={"kind": "drone", "position": GeoPoint(lat=52.52, lon=13.405)})
    try:
        result = await engine.run([Frame(header, plain.jpeg)])
    finally:
        await engine.close()
    assert [d.position for d in result.detections] == [GeoPoint(lat=52.52, lon=13.405)]


def test_a_source_is_due_a_snapshot_when_its_frame_shows_more_than_the_last_one() -> None:
    from collections import Counter
    from uuid import uuid4

    from detectors.events import Detection
    from detectors.snapshots import FolderSnapshots, SnapshotTaker

    start = datetime(2026, 1, 1, tzinfo=UTC)

    def seen(seconds: float, people: int, tracks: tuple[int, ...] = ()) -> Detection:
        boxes = tuple(Box(label="person", class_id=0, score=0.9, x1=0, y1=0, x2=1, y2=1,
                          track_id=tracks[i] if i < len(tracks) else None) for i in range(people))
        return Detection(source_id="cam-1", time=start + timedelta(seconds=seconds), frame_event_id=uuid4(),
                         model="m", model_version="1", frame_width=10, frame_height=10, boxes=boxes,
                         inference_ms=1.0)

    taker = SnapshotTaker(FolderSnapshots(Path("/nonexistent")), min_interval_s=30, min_gap_s=1)
    taker._last["cam-1"] = (start, Counter({"person": 1}), frozenset({7}))  # a snapshot of one person
    assert not taker.due("cam-1", start + timedelta(seconds=2), seen(2, 1, (7,)))  # the same scene
    assert taker.due("cam-1", start + timedelta(seconds=2), seen(2, 3, (7,)))  # the crowd grew
    assert taker.due("cam-1", start + timedelta(seconds=2), seen(2, 1, (8,)))  # someone new
    assert not taker.due("cam-1", start + timedelta(seconds=0.5), seen(0.5, 3))  # within the gap
    assert taker.due("cam-1", start + timedelta(seconds=30), seen(30, 1, (7,)))  # the interval


class CountingModel(FakeModel):
    """A FakeModel that counts its loads and unloads; `unknown` hides its classes until loaded."""

    def __init__(self, name: str, label: str, unknown: bool = False) -> None:
        super().__init__(name, label)
        self.loads = self.unloads = 0
        self.unknown = unknown

    def load(self) -> None:
        self.loads += 1

    def unload(self) -> None:
        self.unloads += 1

    def known_classes(self) -> Sequence[str] | None:
        return None if self.unknown else super().known_classes()


async def test_a_model_no_rule_needs_is_not_loaded_until_one_does_and_freed_after() -> None:
    from rules.loader import parse_rules
    from rules.requirements import detection_needs

    rule = ("- {{id: {0}, title: T, sources: {{ids: [cam-1]}}, "
            "condition: {{type: detection, classes: [{1}]}}}}\n")
    crowd, falls = rule.format("crowd", "person"), rule.format("falls", "Fall")
    rules = parse_rules(crowd, "rules.yaml")
    told: list[tuple[str, bool]] = []
    person, fall, mystery = (CountingModel("person", "person"), CountingModel("fall", "Fall"),
                             CountingModel("mystery", "thing", unknown=True))
    engine = DetectionEngine(
        {"person": ModelRuntime(person), "fall": ModelRuntime(fall), "mystery": ModelRuntime(mystery)},
        lambda _: [StepSpec(model="person"), StepSpec(model="fall"), StepSpec(model="mystery")],
        demand_for=lambda source: detection_needs(rules, source, "camera"), sources=lambda: ["cam-1"],
        on_loaded=lambda model, loaded: told.append((model, loaded)))
    engine.load()
    assert engine.loaded == {"person", "mystery"}  # mystery: its classes are unknown until it loads
    assert (person.loads, fall.loads) == (1, 0)
    _, freed = engine.retarget()  # mystery turned out to report "thing": no rule wants it
    assert freed == {"mystery"} and mystery.unloads == 1
    rules = parse_rules(crowd + falls, "rules.yaml")  # a rule that needs the fall model is published
    found = await engine.run([frame("cam-1", seconds=0)])
    assert fall.loads == 1 and sorted(d.model for d in found.detections) == ["fall", "person"]
    rules = parse_rules(crowd, "rules.yaml")
    kept, freed = engine.retarget()
    assert (kept, freed, fall.unloads) == ({"person"}, {"fall"}, 1)
    again = await engine.run([frame("cam-1", seconds=1)])
    assert [d.model for d in again.detections] == ["person"] and fall.loads == 1
    assert told == [("mystery", True), ("person", True), ("mystery", False), ("fall", True), ("fall", False)]
