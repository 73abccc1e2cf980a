"""A worker and `citywatch ingest` on one config serve metrics on two ports, and a port that
is taken is a clear error, not a traceback."""

from __future__ import annotations

import socket

import click
import pytest

from citywatch.cli import serve_metrics
from citywatch.settings import MetricsSettings, Settings


def test_ingest_takes_the_next_port_unless_told() -> None:
    assert MetricsSettings().port_for("ingest") is None  # metrics off: off for both
    assert (MetricsSettings(port=9100).port_for("worker"), MetricsSettings(port=9100).port_for("ingest")) == (
        9100, 9101)
    assert MetricsSettings(port=9100, ingest_port=9200).port_for("ingest") == 9200
    assert MetricsSettings(ingest_port=9200).port_for("worker") is None


def test_a_taken_metrics_port_names_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings.model_validate({"metrics": {"ingest_port": port}})
        expected = f"metrics port {port} cannot be opened.*metrics.ingest_port"
        with pytest.raises(click.ClickException, match=expected):
            serve_metrics(settings, "ingest")
