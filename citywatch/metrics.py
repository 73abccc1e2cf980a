"""Prometheus metrics of a worker: throughput per agent, model cost, alerts, deliveries.

Model cost is measured per model (inference seconds, frames), so the price of each
detector in CPU/GPU time is visible, not guessed.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from ingest.camera import CameraSource

MESSAGES = Counter("citywatch_messages_total", "Messages processed, by agent", ["agent"])
DEAD_LETTERS = Counter("citywatch_dead_letters_total", "Messages sent to the dead-letter topic",
                       ["consumer"])
FRAMES_INFERRED = Counter("citywatch_model_frames_total", "Frames run through a model", ["model"])
INFERENCE_SECONDS = Histogram(
    "citywatch_model_inference_seconds", "Wall time of one model call on a batch", ["model"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BATCH_SIZE = Histogram("citywatch_model_batch_size", "Frames per model call", ["model"],
                       buckets=(1, 2, 4, 8, 16, 32, 64))
SHADOW_AGREEMENT = Histogram("citywatch_shadow_agreement",
                             "Box agreement of a candidate model with the current one",
                             ["model", "candidate"], buckets=(0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0))
QUEUE_DEPTH = Gauge("citywatch_model_queue_depth", "Frames waiting for a model", ["model"])
MODEL_LOADED = Gauge("citywatch_model_loaded", "1 while the model is in memory (no rule needing it: 0)",
                     ["model"])
FRAMES_SKIPPED = Counter("citywatch_model_frames_skipped_total",
                         "Frames a model did not run on, by reason (stride, cascade, rules)",
                         ["model", "reason"])
ALERTS = Counter("citywatch_alerts_total", "Alert transitions emitted", ["rule", "state"])
NOTIFICATIONS = Counter("citywatch_notifications_total", "Delivery outcomes", ["channel", "status"])
ROWS_STORED = Counter("citywatch_rows_stored_total", "New rows written to TimescaleDB")
LATE_EVENTS = Counter("citywatch_late_events_total",
                      "Events too far behind their rules' watermark to be evaluated (stored, marked)",
                      ["kind"])
ABSENCE_CLOCK_HELD = Counter("citywatch_absence_clock_held_total",
                             "Clock ticks whose absence time was held back because inputs lag")
CONSUMER_LAG = Gauge("citywatch_consumer_lag",
                     "Records in the log this worker has not fetched yet, per assigned topic partition",
                     ["topic", "partition"])
TRANSIENT_FAILURES = Counter("citywatch_transient_failures_total",
                             "Failures waited out and retried (a service down), by agent", ["agent"])


SOURCE_CONNECTED = Gauge("citywatch_source_connected", "1 while the source delivers frames", ["source"])
SOURCE_SAMPLE_FPS = Gauge("citywatch_source_sample_fps", "Current adaptive sampling rate", ["source"])
SOURCE_MEASURED_FPS = Gauge("citywatch_source_measured_fps", "Frames captured per second", ["source"])
SOURCE_FRAMES = Gauge("citywatch_source_frames", "Frames so far by outcome (sent, gated, dropped)",
                      ["source", "outcome"])
SOURCE_RECONNECTS = Gauge("citywatch_source_reconnects", "Reconnects so far", ["source"])


def update_source_metrics(cameras: Sequence[CameraSource], now: float) -> None:
    for camera in cameras:
        source, stats = camera.source_id, camera.stats
        SOURCE_CONNECTED.labels(source).set(1 if stats.connected else 0)
        SOURCE_SAMPLE_FPS.labels(source).set(camera.rate.fps(now))
        SOURCE_MEASURED_FPS.labels(source).set(stats.measured_fps(now))
        SOURCE_FRAMES.labels(source, "sent").set(stats.sent)
        SOURCE_FRAMES.labels(source, "gated").set(stats.gated)
        SOURCE_FRAMES.labels(source, "dropped").set(camera.dropped)
        SOURCE_RECONNECTS.labels(source).set(stats.reconnects)


def serve(host: str, port: int) -> None:
    start_http_server(port, addr=host)
