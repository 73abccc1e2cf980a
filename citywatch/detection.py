"""Build the detection engine from the settings: models, per-source graphs, scenes, metrics."""

from __future__ import annotations

from citywatch import metrics
from citywatch.settings import Settings
from detectors.engine import DetectionEngine, ModelRuntime
from detectors.registry import build_detector
from detectors.scene import SceneSpec


def scene_for(settings: Settings, source_id: str) -> SceneSpec | None:
    camera = next((c for c in settings.sources.cameras if c.id == source_id), None)
    if camera is None:
        return None
    return SceneSpec(
        zones={name: tuple(points) for name, points in camera.zones.items()},
        lines=dict(camera.lines), m_per_px=camera.ground_m_per_px,
    )


def build_engine(settings: Settings) -> DetectionEngine:
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

    engine = DetectionEngine(models, settings.steps_for, lambda s: scene_for(settings, s), on_batch, on_skip)
    return engine
