"""AQI for sensors that report more often than the EPA averaging period.

The EPA index is defined on averages (PM2.5/PM10 24 h, O3/CO 8 h, NO2/SO2 1 h); a low-cost
sensor reports every couple of minutes. Per sensor and pollutant, keep the window's
reports and compute the index from their mean once the window is at least 75 % covered
(the EPA's completeness rule); before that there is no honest index to give.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from ingest.aqi import highest

HOUR = 3600
WINDOW_S = {"pm25": 24 * HOUR, "pm10": 24 * HOUR, "o3": 8 * HOUR, "co": 8 * HOUR, "no2": HOUR, "so2": HOUR}


@dataclass(frozen=True)
class _Sample:
    time: datetime
    value: float
    unit: str
    period_s: float


class RollingAqi:
    def __init__(self, min_coverage: float = 0.75) -> None:
        self.min_coverage = min_coverage
        self._samples: dict[tuple[str, str], deque[_Sample]] = {}

    def add(
        self, sensor_id: str, time: datetime, values: dict[str, float], units: dict[str, str], period_s: float
    ) -> tuple[int, str] | None:
        """Record a report; the highest sub-index over complete windows (and its pollutant), or None."""
        complete: list[tuple[str, float, str | None, int]] = []
        for pollutant, value in values.items():
            window = WINDOW_S.get(pollutant)
            unit = units.get(pollutant)
            if window is None or unit is None:
                continue
            samples = self._samples.setdefault((sensor_id, pollutant), deque())
            samples.append(_Sample(time, value, unit, period_s))
            start = time - timedelta(seconds=window)
            while samples and samples[0].time <= start:
                samples.popleft()
            covered = min(window, sum(s.period_s for s in samples))
            if covered >= self.min_coverage * window and len({s.unit for s in samples}) == 1:
                complete.append((pollutant, sum(s.value for s in samples) / len(samples), unit, window))
        return highest(complete)
