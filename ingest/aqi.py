"""US EPA Air Quality Index (Technical Assistance Document, 2024 PM2.5 revision).

Each pollutant's index is defined for one averaging period (PM: 24 h, O3/CO: 8 h,
NO2/SO2: 1 h; O3 also 1 h above 0.125 ppm). `sub_index` only answers for a
concentration averaged over the pollutant's period, in the EPA's unit, because
an index from the wrong period is a wrong number, not an approximation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

# (C_low, C_high, I_low, I_high) per pollutant and averaging period in seconds.
_Row = tuple[float, float, int, int]

HOUR = 3600


@dataclass(frozen=True)
class PollutantScale:
    unit: str
    period_s: int
    decimals: int  # EPA truncates the concentration to this many decimals
    rows: tuple[_Row, ...]


SCALES: dict[tuple[str, int], PollutantScale] = {
    ("pm25", 24 * HOUR): PollutantScale("ug/m3", 24 * HOUR, 1, (
        (0.0, 9.0, 0, 50), (9.1, 35.4, 51, 100), (35.5, 55.4, 101, 150),
        (55.5, 125.4, 151, 200), (125.5, 225.4, 201, 300), (225.5, 325.4, 301, 500))),
    ("pm10", 24 * HOUR): PollutantScale("ug/m3", 24 * HOUR, 0, (
        (0, 54, 0, 50), (55, 154, 51, 100), (155, 254, 101, 150),
        (255, 354, 151, 200), (355, 424, 201, 300), (425, 604, 301, 500))),
    ("o3", 8 * HOUR): PollutantScale("ppm", 8 * HOUR, 3, (
        (0.000, 0.054, 0, 50), (0.055, 0.070, 51, 100), (0.071, 0.085, 101, 150),
        (0.086, 0.105, 151, 200), (0.106, 0.200, 201, 300))),
    ("o3", 1 * HOUR): PollutantScale("ppm", 1 * HOUR, 3, (
        (0.125, 0.164, 101, 150), (0.165, 0.204, 151, 200),
        (0.205, 0.404, 201, 300), (0.405, 0.604, 301, 500))),
    ("co", 8 * HOUR): PollutantScale("ppm", 8 * HOUR, 1, (
        (0.0, 4.4, 0, 50), (4.5, 9.4, 51, 100), (9.5, 12.4, 101, 150),
        (12.5, 15.4, 151, 200), (15.5, 30.4, 201, 300), (30.5, 50.4, 301, 500))),
    ("so2", 1 * HOUR): PollutantScale("ppb", 1 * HOUR, 0, (
        (0, 35, 0, 50), (36, 75, 51, 100), (76, 185, 101, 150), (186, 304, 151, 200))),
    ("no2", 1 * HOUR): PollutantScale("ppb", 1 * HOUR, 0, (
        (0, 53, 0, 50), (54, 100, 51, 100), (101, 360, 101, 150),
        (361, 649, 151, 200), (650, 1249, 201, 300), (1250, 2049, 301, 500))),
}

# Molar masses (g/mol) for converting mass concentration to mixing ratio.
MOLAR_MASS = {"no2": 46.0055, "so2": 64.066, "o3": 47.997, "co": 28.010}
MOLAR_VOLUME_25C = 24.45  # litres per mole at 25 °C and 1 atm (the EPA reference)


class UnitError(ValueError):
    """A concentration cannot be converted to the unit the AQI needs."""


def molar_volume(temperature_c: float = 25.0, pressure_hpa: float = 1013.25) -> float:
    """Litres per mole of an ideal gas (22.414 L at 0 °C and 1 atm)."""
    return 22.414 * (temperature_c + 273.15) / 273.15 * 1013.25 / pressure_hpa


def to_unit(
    pollutant: str, value: float, unit: str, target: str, temperature_c: float = 25.0
) -> float:
    """Convert between ug/m3, ppb and ppm for a gas at `temperature_c` (the EPA's reference is
    25 °C); PM stays in ug/m3. A sensor measuring in ambient air passes its own temperature."""
    unit, target = _norm_unit(unit), _norm_unit(target)
    if unit == target:
        return value
    if {unit, target} == {"ppb", "ppm"}:
        return value / 1000 if target == "ppm" else value * 1000
    molar_mass = MOLAR_MASS.get(pollutant)
    if molar_mass is None:
        raise UnitError(f"cannot convert {pollutant} from {unit} to {target}")
    volume = MOLAR_VOLUME_25C if temperature_c == 25.0 else molar_volume(temperature_c)
    if unit == "ug/m3":
        ppb = value * volume / molar_mass
        return ppb if target == "ppb" else ppb / 1000
    ppb = value if unit == "ppb" else value * 1000
    if target == "ug/m3":
        return ppb * molar_mass / volume
    raise UnitError(f"unknown unit {target!r}")


def _norm_unit(unit: str) -> str:
    aliases = {"µg/m³": "ug/m3", "μg/m³": "ug/m3", "µg/m3": "ug/m3", "ug/m³": "ug/m3"}
    unit = aliases.get(unit.strip(), unit.strip().lower())
    if unit not in {"ug/m3", "ppb", "ppm"}:
        raise UnitError(f"unknown unit {unit!r} (expected ug/m3, ppb or ppm)")
    return unit


def sub_index(pollutant: str, value: float, unit: str, period_s: int) -> int | None:
    """The AQI for one pollutant, or None where the EPA defines none for that period."""
    scale = SCALES.get((pollutant, period_s))
    if scale is None or value < 0:
        return None
    conc = to_unit(pollutant, value, unit, scale.unit)
    factor = 10**scale.decimals
    conc = math.floor(conc * factor) / factor
    if conc < scale.rows[0][0]:
        return None  # e.g. 1-hour O3 below 0.125 ppm: the 8-hour index applies instead
    for c_lo, c_hi, i_lo, i_hi in scale.rows:
        if conc <= c_hi:
            # Truncation keeps conc out of the gaps between rows (9.0 < C < 9.1 cannot occur).
            index: float = (i_hi - i_lo) / (c_hi - c_lo) * (max(conc, c_lo) - c_lo) + i_lo
            return math.floor(index + 0.5 + 1e-9)  # the EPA rounds half up (Python's round() halves to even)
    return 500  # beyond the index: the EPA caps the reported value


def overall_aqi(
    values: dict[str, float], units: dict[str, str], period_s: int | None
) -> tuple[int, str] | None:
    """The highest sub-index over the reading's pollutants, and which pollutant set it."""
    if period_s is None:
        return None
    return highest((pollutant, value, units.get(pollutant), period_s) for pollutant, value in values.items())


def highest(candidates: Iterable[tuple[str, float, str | None, int]]) -> tuple[int, str] | None:
    """The highest sub-index among (pollutant, value, unit, period) candidates, and its pollutant;
    candidates without a unit, a convertible unit or an index for that period do not count."""
    best: tuple[int, str] | None = None
    for pollutant, value, unit, period_s in candidates:
        if unit is None:
            continue
        try:
            index = sub_index(pollutant, value, unit, period_s)
        except UnitError:
            continue
        if index is not None and (best is None or index > best[0]):
            best = (index, pollutant)
    return best
