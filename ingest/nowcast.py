"""The US EPA NowCast: the AQI as AirNow reports it each hour, before a full averaging
period (24 h for PM, 8 h for ozone) has passed.

From the hourly averages of the last 12 hours (PM2.5, PM10) or 8 hours (ozone), c1 the
current hour: the weight factor is w = c_min / c_max over the hours present (1 - the
scaled range), at least 0.5 for PM and without a minimum for ozone, and the NowCast is
sum(w^(i-1) c_i) / sum(w^(i-1)) over the hours present. It is not reported unless 2 of the
3 most recent hours have data. The concentration is then truncated as the AQI's own scale
requires (PM2.5 to 0.1 µg/m³, PM10 to 1, ozone to 0.001 ppm) and indexed on the pollutant's
longer-period breakpoints (ingest/aqi.py).

Readings arrive every few minutes from pushed sensors, or hourly from replayed files:
each is put into its clock hour, whose average is the mean of what it holds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ingest.aqi import HOUR, SCALES, UnitError, sub_index, to_unit

HOURS = {"pm25": 12, "pm10": 12, "o3": 8}
MIN_WEIGHT = {"pm25": 0.5, "pm10": 0.5, "o3": 0.0}
INDEX_PERIOD_S = {"pm25": 24 * HOUR, "pm10": 24 * HOUR, "o3": 8 * HOUR}


def nowcast(hourly: Sequence[float | None], pollutant: str) -> float | None:
    """The NowCast concentration from hourly averages, most recent first (None: a missing
    hour); None where the EPA reports none (fewer than 2 of the 3 most recent hours)."""
    hours = hourly[: HOURS[pollutant]]
    if sum(value is not None for value in hours[:3]) < 2:
        return None
    present = [(age, value) for age, value in enumerate(hours) if value is not None]
    highest = max(value for _, value in present)
    lowest = min(value for _, value in present)
    weight = 1.0 if highest <= 0 else max(MIN_WEIGHT[pollutant], min(1.0, lowest / highest))
    total = sum(weight**age * value for age, value in present)
    return total / sum(weight**age for age, _ in present)


def nowcast_aqi(hourly: Sequence[float | None], pollutant: str, unit: str) -> int | None:
    """The NowCast as an AQI, on the breakpoints of the pollutant's longer period."""
    concentration = nowcast(hourly, pollutant)
    if concentration is None:
        return None
    scale_unit = SCALES[(pollutant, INDEX_PERIOD_S[pollutant])].unit
    try:
        in_scale = to_unit(pollutant, concentration, unit, scale_unit)
    except UnitError:
        return None
    return sub_index(pollutant, in_scale, scale_unit, INDEX_PERIOD_S[pollutant])


@dataclass
class _Hour:
    start: datetime
    total: float
    count: int
    unit: str


class NowCastTracker:
    """Per sensor and pollutant, the clock hours needed for the NowCast, as readings come."""

    def __init__(self) -> None:
        self._hours: dict[tuple[str, str], deque[_Hour]] = {}

    def add(self, sensor_id: str, time: datetime, values: dict[str, float],
            units: dict[str, str]) -> tuple[int, str] | None:
        """Record a reading; the highest NowCast AQI over its pollutants, and which one."""
        best: tuple[int, str] | None = None
        hour = time.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        for pollutant, value in values.items():
            unit = units.get(pollutant)
            if pollutant not in HOURS or unit is None:
                continue
            hours = self._hours.setdefault((sensor_id, pollutant), deque())
            if hours and hours[-1].start == hour and hours[-1].unit == unit:
                hours[-1].total += value
                hours[-1].count += 1
            elif not hours or hours[-1].start < hour:
                hours.append(_Hour(hour, value, 1, unit))
            else:
                continue  # an older hour, or another unit mid-hour: the NowCast runs forward only
            while (hour - hours[0].start).total_seconds() >= HOURS[pollutant] * HOUR:
                hours.popleft()
            averages = {h.start: h.total / h.count for h in hours if h.unit == unit}
            hourly = [averages.get(hour - timedelta(hours=age)) for age in range(HOURS[pollutant])]
            index = nowcast_aqi(hourly, pollutant, unit)
            if index is not None and (best is None or index > best[0]):
                best = (index, pollutant)
        return best
