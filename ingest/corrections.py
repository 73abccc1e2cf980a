"""Corrections for low-cost PM sensors, per sensor: the corrected value takes the measured
one's name (so rules and the AQI use it) and the measured value is kept beside it as
`pm25_raw`, both stored.

`us-epa-2021`: the US-wide correction for PurpleAir-type (Plantower) sensors of Barkjohn et
al. (2021, Atmos. Meas. Tech. 14, 4617), PM2.5 = 0.524 x PM2.5(cf_1) - 0.0862 x RH + 5.75,
with the relative humidity the same device measured. It was fitted on 24-hour averages
up to about 50 µg/m³; above, it underestimates smoke (EPA's later piecewise extension is
not applied here). Without a humidity in the same reading nothing is corrected (the value
stays the measured one, with no `pm25_raw` beside it) rather than a humidity guessed.
"""

from __future__ import annotations

from typing import Literal

PmCorrection = Literal["us-epa-2021"]


def correct_pm25(values: dict[str, float], units: dict[str, str],
                 correction: PmCorrection | None) -> tuple[dict[str, float], dict[str, str]]:
    if correction is None or "pm25" not in values or units.get("pm25") not in ("ug/m3", "µg/m³"):
        return values, units
    humidity = values.get("humidity") if units.get("humidity") == "%" else None
    if humidity is None:
        return values, units
    raw = values["pm25"]
    corrected = max(0.0, 0.524 * raw - 0.0862 * humidity + 5.75)
    return ({**values, "pm25": round(corrected, 3), "pm25_raw": raw},
            {**units, "pm25_raw": units["pm25"]})
