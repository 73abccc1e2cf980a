"""The multi-model inference engine: per-source model graphs over micro-batching schedulers.

For each frame: decode once; run the source's independent steps at the same time (each
model's scheduler batches frames from all sources); then the cascade steps whose
condition an earlier step met, on the whole frame or on crops around the boxes that met
it; filter, track, and emit one Detection per step that ran. Steps skipped by stride or
by an unmet cascade are counted, not silently dropped. A frame whose JPEG does not
decode is returned as rejected with the reason.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from detectors.base import Detector, Image
from detectors.config import StepSpec, WhenSpec
from detectors.decode import DEFAULT_MAX_PIXELS, decode_jpeg
from detectors.events import Box, Detection, LineCrossing
from detectors.scene import SceneSpec
from detectors.scheduler import BatchObserver, BatchScheduler
from detectors.snapshots import SnapshotTaker
from detectors.tracking import Tracker, iou
from ingest.events import EventFormatError
from ingest.frame_codec import Frame

SkipObserver = Callable[[str, str], None]  # model, reason
ShadowObserver = Callable[[str, str, float], None]  # model, candidate, agreement 0..1


class Demand(Protocol):
    """What the rules need for a source (rules.requirements.DetectionNeeds fits)."""

    @property
    def classes(self) -> frozenset[str]: ...

    @property
    def models(self) -> frozenset[str]: ...

    def wants(self, model: str, model_classes: Iterable[str]) -> bool: ...


def detection_id(frame_event_id: uuid.UUID, model: str, version: str) -> uuid.UUID:
    """Deterministic: re-processing a frame yields the same detection ids (storage dedups)."""
    return uuid.uuid5(frame_event_id, f"{model}@{version}")


@dataclass(frozen=True)
class ModelRuntime:
    detector: Detector
    batch_size: int = 4
    max_wait_ms: float = 20.0


@dataclass(frozen=True)
class RunResult:
    detections: list[Detection]
    rejected: list[tuple[Frame, str]]


@dataclass
class EngineStats:
    skipped: Counter[str] = field(default_factory=Counter)  # "model:reason"
    shadow: dict[str, list[float]] = field(default_factory=dict)  # "model->candidate": agreements


def validate_steps(steps: Sequence[StepSpec], models: Mapping[str, object]) -> None:
    """Every step names a known model; a cascade depends on an earlier step."""
    seen: set[str] = set()
    for step in steps:
        if step.model not in models:
            raise ValueError(f"step runs unknown model {step.model!r} (known: {', '.join(sorted(models))})")
        if step.when is not None and step.when.model not in seen:
            raise ValueError(f"step {step.model!r} depends on {step.when.model!r}, which must run before it")
        if step.shadow is not None and step.shadow.model not in models:
            raise ValueError(f"step {step.model!r} shadows with unknown model {step.shadow.model!r}")
        seen.add(step.model)


class DetectionEngine:
    def __init__(
        self,
        models: Mapping[str, ModelRuntime],
        steps_for: Callable[[str], Sequence[StepSpec]] | None = None,
        scene_for: Callable[[str], SceneSpec | None] | None = None,
        on_batch: BatchObserver | None = None,
        on_skip: SkipObserver | None = None,
        demand_for: Callable[[str], Demand | None] | None = None,
        snapshots: SnapshotTaker | None = None,
        on_shadow: ShadowObserver | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        sources: Callable[[], Iterable[str]] | None = None,
        on_loaded: Callable[[str, bool], None] | None = None,
    ) -> None:
        """`sources`: the sources that send frames; with it, a model that none of their rules
        needs is not loaded (see `needed_models`), without it every model is."""
        self.models = dict(models)
        self._sources = sources
        self._on_loaded = on_loaded or (lambda _model, _loaded: None)
        """Told each time a model is loaded (True) or freed (False)."""
        self.loaded: set[str] = set()
        self._classes_seen: dict[str, list[str]] = {}
        self._loading: asyncio.Lock | None = None
        self.max_pixels = max_pixels
        self._steps_for = steps_for or (lambda _source: [StepSpec(model=name) for name in self.models])
        self._scene_for = scene_for or (lambda _source: None)
        self._on_skip = on_skip
        self._demand_for = demand_for or (lambda _source: None)
        self.snapshots = snapshots
        self._on_shadow = on_shadow
        self.stats = EngineStats()
        self.schedulers = {
            name: BatchScheduler(m.detector, m.batch_size, m.max_wait_ms, on_batch)
            for name, m in self.models.items()
        }
        self._frame_counts: Counter[str] = Counter()
        self._trackers: dict[tuple[str, str], Tracker] = {}

    @property
    def detectors(self) -> list[Detector]:
        return [m.detector for m in self.models.values()]

    def load(self) -> None:
        """The models some source's rules need now; the others wait until one does."""
        for name in sorted(self.needed_models()):
            self._load(name, warm=True)

    def _load(self, name: str, warm: bool = False) -> None:
        """`warm`: run it once on a blank frame (at start-up; a model loaded for the frame
        in hand gets that frame first)."""
        detector = self.models[name].detector
        detector.load()
        if warm:
            detector.warm_up()
        self.loaded.add(name)
        self._on_loaded(name, True)
        self._classes_seen[name] = list(detector.classes)  # known from now on, loaded or not

    def needed_models(self) -> set[str]:
        """Every model the current rules need on some source (with the models they cascade
        from or are shadowed by); every model where the engine does not know its sources."""
        if self._sources is None:
            return set(self.models)
        needed: set[str] = set()
        for source in self._sources():
            for step in self._needed_steps(self._steps_for(source), self._demand_for(source)):
                needed.add(step.model)
                if step.shadow is not None:
                    needed.add(step.shadow.model)
        return needed

    def retarget(self) -> tuple[set[str], set[str]]:
        """After the rules changed: free the models no rule needs any more. Those newly
        needed load at their first frame. Returns (still loaded, freed)."""
        needed = self.needed_models()
        freed = {name for name in self.loaded if name not in needed}
        for name in freed:
            self.models[name].detector.unload()
            self.loaded.discard(name)
            self._on_loaded(name, False)
        return set(self.loaded), freed

    async def _ensure_loaded(self, names: Iterable[str]) -> None:
        """Load, once, the models a frame is about to use that nobody needed before."""
        missing = [name for name in names if name not in self.loaded]
        if not missing:
            return
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:
            for name in missing:
                if name not in self.loaded:
                    await asyncio.to_thread(self._load, name)

    async def run(self, frames: Sequence[Frame]) -> RunResult:
        """Each frame on its own: one that cannot be decoded, or that a model or tracker fails
        on, is rejected with the reason; the other frames of the batch are unaffected."""
        images = await asyncio.to_thread(_decode_all, frames, self.max_pixels)
        rejected = [(f, i) for f, i in zip(frames, images, strict=True) if isinstance(i, str)]
        decoded = [(f, i) for f, i in zip(frames, images, strict=True) if not isinstance(i, str)]
        per_frame = await asyncio.gather(*(self._frame(frame, image) for frame, image in decoded),
                                         return_exceptions=True)
        detections: list[Detection] = []
        for (frame, _), outcome in zip(decoded, per_frame, strict=True):
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            if isinstance(outcome, BaseException):
                reason = f"detection failed on this frame: {type(outcome).__name__}: {outcome}"
                rejected.append((frame, reason))
            else:
                detections += outcome
        return RunResult(detections, rejected)

    async def _frame(self, frame: Frame, image: Image) -> list[Detection]:
        source = frame.source_id
        demand = self._demand_for(source)
        steps = self._prune(self._steps_for(source), demand)
        index = self._frame_counts[source]
        self._frame_counts[source] += 1
        due = [s for s in steps if index % s.stride == 0]
        for step in steps:
            if step not in due:
                self._skip(step.model, "stride")
        await self._ensure_loaded({name for s in due for name in (s.model, *(
            [s.shadow.model] if s.shadow is not None else []))})
        found: dict[str, tuple[list[Box], float]] = {}
        independent = [s for s in due if s.when is None]
        outputs = await asyncio.gather(*(self.schedulers[s.model].infer(image) for s in independent))
        for step, (boxes, ms) in zip(independent, outputs, strict=True):
            found[step.model] = (_filter(boxes, step), ms)
        for step in independent:
            if step.shadow is None or (index // step.stride) % step.shadow.every != 0:
                continue
            await self._shadow(step, image, found[step.model][0])
        for step in (s for s in due if s.when is not None):
            assert step.when is not None
            triggers = _triggers(found.get(step.when.model, ([], 0.0))[0], step.when)
            if not triggers:
                self._skip(step.model, "cascade")
                continue
            boxes, ms = await self._cascade(step, step.when, image, triggers)
            found[step.model] = (_filter(boxes, step), ms)
        events = [self._event(frame, image, model, boxes, ms) for model, (boxes, ms) in found.items()]
        if self.snapshots is not None and demand is not None:
            events = [await self._snapshot(event, image, demand) for event in events]
        return events

    def _prune(self, steps: Sequence[StepSpec], demand: Demand | None) -> list[StepSpec]:
        """Only the steps some rule needs for this source, and the steps those cascade from."""
        kept = self._needed_steps(steps, demand)
        for step in steps:
            if step not in kept:
                self._skip(step.model, "rules")
        return kept

    def _wanted(self, step: StepSpec, demand: Demand) -> bool:
        """A rule wants this step's model; a model whose classes are unknown until it loads
        is wanted (a model pruned for not knowing would leave a rule that never fires)."""
        detector = self.models[step.model].detector
        classes = step.classes or self._classes_seen.get(step.model) or detector.known_classes()
        return classes is None or demand.wants(step.model, classes)

    def _needed_steps(self, steps: Sequence[StepSpec], demand: Demand | None) -> list[StepSpec]:
        if demand is None:
            return list(steps)
        needed = {s.model for s in steps if self._wanted(s, demand)}
        for step in reversed(steps):
            if step.model in needed and step.when is not None:
                needed.add(step.when.model)
        return [s for s in steps if s.model in needed]

    async def _snapshot(self, event: Detection, image: Image, demand: Demand) -> Detection:
        assert self.snapshots is not None
        relevant = event.model in demand.models or any(b.label in demand.classes for b in event.boxes)
        if not event.boxes or not relevant or not self.snapshots.due(event.source_id, event.time, event):
            return event
        reference = await self.snapshots.take(event, image)
        return event if reference is None else event.model_copy(update={"snapshot": reference})

    async def _shadow(self, step: StepSpec, image: Image, current: list[Box]) -> None:
        assert step.shadow is not None
        candidate, _ = await self.schedulers[step.shadow.model].infer(image)
        agreement = box_agreement(current, _filter(candidate, step), step.shadow.min_iou)
        self.stats.shadow.setdefault(f"{step.model}->{step.shadow.model}", []).append(agreement)
        if self._on_shadow is not None:
            self._on_shadow(step.model, step.shadow.model, agreement)

    async def _cascade(self, step: StepSpec, when: WhenSpec, image: Image,
                       triggers: list[Box]) -> tuple[list[Box], float]:
        scheduler = self.schedulers[step.model]
        if not when.regions:
            return await scheduler.infer(image)
        crops = [_crop(image, box, when.pad) for box in triggers]
        outputs = await asyncio.gather(*(scheduler.infer(crop) for crop, _, _ in crops))
        boxes = [
            b.model_copy(update={"x1": round(b.x1 + dx, 1), "y1": round(b.y1 + dy, 1),
                                 "x2": round(b.x2 + dx, 1), "y2": round(b.y2 + dy, 1)})
            for (_, dx, dy), (found, _) in zip(crops, outputs, strict=True) for b in found
        ]
        return boxes, sum(ms for _, ms in outputs)

    def _event(self, frame: Frame, image: Image, model: str, boxes: list[Box], ms: float) -> Detection:
        header = frame.header
        detector = self.models[model].detector
        tracker = self._trackers.get((header.source_id, model))
        if tracker is None:
            tracker = self._trackers[(header.source_id, model)] = Tracker(self._scene_for(header.source_id))
        tracked, crossings = tracker.update(boxes, header.time)
        return Detection(
            event_id=detection_id(header.event_id, detector.name, detector.version),
            source_id=header.source_id, time=header.time, frame_event_id=header.event_id, kind=header.kind,
            model=detector.name, model_version=detector.version,
            frame_width=image.shape[1], frame_height=image.shape[0],
            boxes=tuple(tracked), crossings=tuple(_dedupe(crossings)), inference_ms=round(ms, 3),
            position=header.position,
        )

    def _skip(self, model: str, reason: str) -> None:
        self.stats.skipped[f"{model}:{reason}"] += 1
        if self._on_skip is not None:
            self._on_skip(model, reason)

    async def close(self) -> None:
        for scheduler in self.schedulers.values():
            await scheduler.close()


def box_agreement(a: list[Box], b: list[Box], min_iou: float) -> float:
    """Share of boxes matched one-to-one (same label, IoU >= min_iou); 1.0 when both are empty."""
    if not a and not b:
        return 1.0
    unmatched = list(b)
    matched = 0
    for box in sorted(a, key=lambda x: -x.score):
        best = max(unmatched, key=lambda c: iou(box, c) if c.label == box.label else -1, default=None)
        if best is not None and best.label == box.label and iou(box, best) >= min_iou:
            unmatched.remove(best)
            matched += 1
    return matched / max(len(a), len(b))


def _filter(boxes: list[Box], step: StepSpec) -> list[Box]:
    wanted = set(step.classes)
    return [
        b for b in boxes
        if (not wanted or b.label in wanted) and b.score >= step.min_score
        and (b.x2 - b.x1) * (b.y2 - b.y1) >= step.min_area
    ]


def _triggers(boxes: list[Box], when: WhenSpec) -> list[Box]:
    return [b for b in boxes if b.label in when.classes and b.score >= when.min_score]


def _crop(image: Image, box: Box, pad: float) -> tuple[Image, int, int]:
    height, width = image.shape[:2]
    px, py = (box.x2 - box.x1) * pad, (box.y2 - box.y1) * pad
    x1, y1 = max(0, int(box.x1 - px)), max(0, int(box.y1 - py))
    x2, y2 = min(width, int(box.x2 + px) + 1), min(height, int(box.y2 + py) + 1)
    return image[y1:y2, x1:x2], x1, y1


def _dedupe(crossings: list[LineCrossing]) -> list[LineCrossing]:
    return list(dict.fromkeys(crossings))


def _decode_all(frames: Sequence[Frame], max_pixels: int) -> list[Image | str]:
    out: list[Image | str] = []
    for frame in frames:
        try:
            out.append(decode_jpeg(frame.jpeg, max_pixels))
        except EventFormatError as exc:
            out.append(str(exc))
    return out
