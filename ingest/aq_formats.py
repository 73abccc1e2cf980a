"""Air-quality message formats: Sensor.Community (luftdaten) push JSON and CityWatch's generic JSON.

Sensor.Community firmware (airrohr) POSTs, every ~145 s, a body like
    {"esp8266id": "13572468", "software_version": "NRZ-2020-133",
     "sensordatavalues": [{"value_type": "SDS_P1", "value": "17.32"},
                          {"value_type": "SDS_P2", "value": "9.10"},
                          {"value_type": "BME280_temperature", "value": "11.80"}, ...]}
with header `X-Sensor: esp8266-13572468`. P1 is PM10, P2 is PM2.5, P0 is PM1 (µg/m³).

The generic format (one object or a list):
    {"sensor_id": "aq-7", "time": "2026-11-24T10:00:00Z", "period_s": 3600,
     "values": {"no2": 41.2, "pm25": 12.0}, "units": {"no2": "ug/m3", "pm25": "ug/m3"}}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from ingest.events import MAX_PERIOD_S, MAX_YEAR, MIN_YEAR

SENSOR_COMMUNITY_SUFFIXES = {
    "P0": ("pm1", "ug/m3"), "P1": ("pm10", "ug/m3"), "P2": ("pm25", "ug/m3"),
    "temperature": ("temperature", "C"), "humidity": ("humidity", "%"), "pressure": ("pressure", "hPa"),
}
IGNORED_VALUE_TYPES = {"samples", "min_micro", "max_micro", "interval", "signal", "GPS_lat", "GPS_lon",
                       "GPS_height", "GPS_date", "GPS_time"}


class FormatError(ValueError):
    """The message is not in the format it claims; the text says what is wrong."""


@dataclass(frozen=True)
class ParsedReading:
    device_id: str
    values: dict[str, float]
    units: dict[str, str]
    time: datetime | None = None
    period_s: int | None = None
    extras: dict[str, Any] = field(default_factory=dict)


MAX_READINGS_PER_MESSAGE = 1000
MAX_JSON_DEPTH = 8
"""Deeper than any format here needs (the generic one nests three levels); a message nested
thousands deep is refused before it costs a recursion."""


def _depth(value: Any, limit: int) -> int:
    if limit < 0:
        return 1
    if isinstance(value, dict):
        return 1 + max((_depth(v, limit - 1) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v, limit - 1) for v in value), default=0)
    return 0


def _json(body: bytes) -> Any:
    """Strict JSON (no NaN literals), at most MAX_JSON_DEPTH deep."""
    try:
        data = orjson.loads(body.removeprefix(b"\xef\xbb\xbf"))  # a BOM, as some clients send
    except orjson.JSONDecodeError as exc:
        raise FormatError(f"not JSON: {exc}") from exc
    if _depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise FormatError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return data


def _number(text: Any, what: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError) as exc:
        raise FormatError(f"{what}: {text!r} is not a number") from exc
    if value != value or value in (float("inf"), float("-inf")):
        raise FormatError(f"{what}: {text!r} is not a finite number")
    return value


def parse_sensor_community(
    body: bytes, sensor_header: str | None, send_interval_s: int = 145
) -> ParsedReading:
    data = _json(body)
    if not isinstance(data, dict) or not isinstance(data.get("sensordatavalues"), list):
        raise FormatError("missing the 'sensordatavalues' list")
    device = sensor_header or (f"esp8266-{data['esp8266id']}" if data.get("esp8266id") else None)
    if not device:
        raise FormatError("no sensor id (X-Sensor header or esp8266id)")
    values: dict[str, float] = {}
    units: dict[str, str] = {}
    for index, item in enumerate(data["sensordatavalues"]):
        if not isinstance(item, dict) or "value_type" not in item or "value" not in item:
            raise FormatError(f"sensordatavalues[{index}] needs value_type and value")
        value_type = str(item["value_type"])
        if value_type in IGNORED_VALUE_TYPES:
            continue
        suffix = value_type.split("_", 1)[-1]
        mapped = SENSOR_COMMUNITY_SUFFIXES.get(suffix)
        if mapped is None:
            raise FormatError(f"unknown value_type {value_type!r}")
        name, unit = mapped
        value = _number(item["value"], value_type)
        if name == "pressure" and value > 2000:  # BME280 reports Pa
            value /= 100
        values[name], units[name] = value, unit
    if not values:
        raise FormatError("no measured values")
    return ParsedReading(device, values, units, period_s=send_interval_s,
                         extras={"software_version": data.get("software_version")})


def parse_generic(body: bytes) -> list[ParsedReading]:
    data = _json(body)
    items = data if isinstance(data, list) else [data]
    if len(items) > MAX_READINGS_PER_MESSAGE:
        raise FormatError(f"{len(items)} readings in one message (at most {MAX_READINGS_PER_MESSAGE})")
    parsed = []
    for index, item in enumerate(items):
        where = f"item {index}: " if isinstance(data, list) else ""
        if not isinstance(item, dict):
            raise FormatError(f"{where}a reading must be an object")
        unknown = set(item) - {"sensor_id", "time", "period_s", "values", "units"}
        if unknown:
            raise FormatError(f"{where}unknown keys {sorted(unknown)}")
        if not isinstance(item.get("sensor_id"), str) or not item["sensor_id"]:
            raise FormatError(f"{where}sensor_id is required")
        raw_values, raw_units = item.get("values"), item.get("units", {})
        if not isinstance(raw_values, dict) or not raw_values or not isinstance(raw_units, dict):
            raise FormatError(f"{where}values must be a non-empty object (and units an object)")
        values = {str(k): _number(v, f"{where}values.{k}") for k, v in raw_values.items()}
        missing_units = sorted(set(values) - set(raw_units))
        if missing_units:
            raise FormatError(f"{where}no unit for {missing_units}")
        stamp = None
        if "time" in item:
            try:
                stamp = datetime.fromisoformat(str(item["time"]).replace("Z", "+00:00"))
            except ValueError as exc:
                raise FormatError(f"{where}time: {exc}") from exc
            if stamp.tzinfo is None:
                raise FormatError(f"{where}time must include a UTC offset")
            if not MIN_YEAR < stamp.year < MAX_YEAR:
                raise FormatError(
                    f"{where}time {stamp.isoformat()} is outside the years {MIN_YEAR}-{MAX_YEAR}")
        period = item.get("period_s")
        if period is not None and (type(period) is not int or not 0 < period <= MAX_PERIOD_S):
            raise FormatError(f"{where}period_s must be a whole number of seconds from 1 to {MAX_PERIOD_S}")
        parsed.append(ParsedReading(item["sensor_id"], values, {k: str(raw_units[k]) for k in values},
                                    time=stamp, period_s=period))
    return parsed
