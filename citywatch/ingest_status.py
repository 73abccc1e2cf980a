"""One status line per source for `citywatch ingest`: is it connected, how fast, what it skipped."""

from __future__ import annotations

import time
from collections.abc import Sequence

from citywatch.sources import SourceCounters
from ingest.camera import CameraSource


def status_lines(cameras: Sequence[CameraSource], counters: SourceCounters) -> list[str]:
    now = time.monotonic()
    lines = []
    for camera in cameras:
        s = camera.stats
        state = "connected" if s.connected else "OFFLINE"
        lines.append(
            f"{camera.source_id:<24} {state:<9} sampling {camera.rate.fps(now):4.1f} fps "
            f"(measured {s.measured_fps(now):4.1f})  sent {s.sent}  gated {s.gated}  "
            f"dropped {camera.dropped}  reconnects {s.reconnects}"
        )
    c = counters.counts
    lines.append(f"{'all sources':<24} frames {c['frames']}  readings {c['readings']}  "
                 f"telemetry {c['telemetry']}  rejected {c['rejected']}")
    return lines
