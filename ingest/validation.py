"""Plausible ranges per measured quantity: a value outside is a sensor fault or a bad message.

Ranges are wide (what the physical world and common sensors can produce), so a real
pollution event passes and a corrupt or mis-scaled value does not.
"""

from __future__ import annotations

from ingest.aqi import UnitError, to_unit

# quantity -> (unit the range is in, low, high)
RANGES: dict[str, tuple[str, float, float]] = {
    "pm1": ("ug/m3", 0, 1500),
    "pm25": ("ug/m3", 0, 1500),
    "pm10": ("ug/m3", 0, 3000),
    "no2": ("ppb", 0, 3000),
    "so2": ("ppb", 0, 3000),
    "o3": ("ppb", 0, 1000),
    "co": ("ppm", 0, 200),
    "temperature": ("C", -60, 70),
    "humidity": ("%", 0, 100),
    "pressure": ("hPa", 800, 1100),
}


def out_of_range(values: dict[str, float], units: dict[str, str]) -> list[str]:
    """Each problem as text: '<field>=<value> <unit> outside <low>..<high> <unit>'."""
    problems = []
    for name, value in values.items():
        spec = RANGES.get(name)
        unit = units.get(name, "")
        if spec is None:
            continue
        range_unit, low, high = spec
        try:
            comparable = value if unit == range_unit else to_unit(name, value, unit, range_unit)
        except UnitError:
            problems.append(f"{name}: unit {unit!r} cannot be compared with {range_unit}")
            continue
        if not low <= comparable <= high:
            problems.append(f"{name}={value} {unit} outside {low:g}..{high:g} {range_unit}")
    return problems
