"""Build the detection engine from the settings: models, per-source graphs, scenes, metrics."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from citywatch import metrics
from citywatch.catalog import source_catalog
from citywatch.settings import Settings
from detectors.engine import DetectionEngine, ModelRuntime
from detectors.registry import build_detector
from detectors.scene import SceneSpec
from detectors.snapshots import SnapshotSink, SnapshotTaker
from rules.base import SourceInfo
from rules.model import Rule
from rules.requirements import DetectionNeeds, detection_needs


def scene_for(settings: Settings, source_id: str) -> SceneSpec | None:
    camera = next((c for c in settings.sources.cameras if c.id == source_id), None)
    if camera is None:
        return None
    return SceneSpec(
        zones={name: tuple(points) for name, points in camera.zones.items()},
        lines=dict(camera.lines), m_per_px=camera.ground_m_per_px,
    )


def build_engine(settings: Settings, rules: Callable[[], Sequence[Rule]] = list,
                 snapshot_sink: SnapshotSink | None = None) -> DetectionEngine:
    """`rules` gives the current rule set (it changes on hot reload); evidence snapshots go
    to `snapshot_sink` (none without one, or when `pipelines.snapshots` is off)."""
    models = {
        spec.name: ModelRuntime(build_detector(spec), spec.batch_size, spec.max_wait_ms)
        for spec in settings.models
    }
    engine: DetectionEngine

    def on_batch(model: str, size: int, seconds: float) -> None:
        metrics.BATCH_SIZE.labels(model).observe(size)
        metrics.INFERENCE_SECONDS.labels(model).observe(seconds)
        metrics.FRAMES_INFERRED.labels(model).inc(size)
        metrics.QUEUE_DEPTH.labels(model).set(engine.schedulers[model].depth)

    def on_skip(model: str, reason: str) -> None:
        metrics.FRAMES_SKIPPED.labels(model, reason).inc()

    def on_loaded(model: str, loaded: bool) -> None:
        metrics.MODEL_LOADED.labels(model).set(int(loaded))

    def on_shadow(model: str, candidate: str, agreement: float) -> None:
        metrics.SHADOW_AGREEMENT.labels(model, candidate).observe(agreement)

    catalog = source_catalog(settings)

    def demand_for(source_id: str) -> DetectionNeeds | None:
        if not settings.pipelines.prune_by_rules:
            return None
        info = catalog.get(source_id, SourceInfo(kind="camera"))
        return detection_needs(rules(), source_id, info.kind or "camera", info)

    pipelines = settings.pipelines
    snapshots = (SnapshotTaker(snapshot_sink, pipelines.snapshot_min_interval_s)
                 if pipelines.snapshots and snapshot_sink is not None else None)
    engine = DetectionEngine(models, settings.steps_for, lambda s: scene_for(settings, s), on_batch, on_skip,
                             demand_for=demand_for, snapshots=snapshots, on_shadow=on_shadow,
                             max_pixels=pipelines.max_frame_pixels,
                             sources=(lambda: [c.id for c in settings.sources.cameras])
                             if pipelines.prune_by_rules else None,
                             on_loaded=on_loaded)
    for name in models:
        metrics.MODEL_LOADED.labels(name).set(0)  # until loaded
    return engine
