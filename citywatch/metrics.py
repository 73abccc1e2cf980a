"""Prometheus metrics of a worker: throughput per agent, model cost, alerts, deliveries.

Model cost is measured per model (inference seconds, frames), so the price of each
detector in CPU/GPU time is visible, not guessed.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

MESSAGES = Counter("citywatch_messages_total", "Messages processed, by agent", ["agent"])
DEAD_LETTERS = Counter("citywatch_dead_letters_total", "Messages sent to the dead-letter topic",
                       ["consumer"])
FRAMES_INFERRED = Counter("citywatch_model_frames_total", "Frames run through a model", ["model"])
INFERENCE_SECONDS = Histogram(
    "citywatch_model_inference_seconds", "Wall time of one model call on a batch", ["model"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
ALERTS = Counter("citywatch_alerts_total", "Alert transitions emitted", ["rule", "state"])
NOTIFICATIONS = Counter("citywatch_notifications_total", "Delivery outcomes", ["channel", "status"])
ROWS_STORED = Counter("citywatch_rows_stored_total", "New rows written to TimescaleDB")
STORE_FAILURES = Counter("citywatch_store_failures_total", "Failed batch writes (retried)")


def serve(host: str, port: int) -> None:
    start_http_server(port, addr=host)
