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

The Things Stack (LoRaWAN, v3) uplink message, as its webhook integration POSTs it and its
MQTT integration publishes it (`v3/<app>@<tenant>/devices/<device>/up`):
    {"end_device_ids": {"device_id": "aq-node-3", "dev_eui": "70B3D57ED005B89A", ...},
     "received_at": "2026-05-25T13:42:11.412Z",
     "uplink_message": {"f_port": 2, "decoded_payload": {"pm2_5": 9.1, "temperature_c": 21.4},
                        "normalized_payload": [{"air": {"temperature": 21.4, "relativeHumidity": 40}}],
                        "received_at": "2026-05-25T13:42:11.401Z", ...}}
Its values are whatever the device's payload formatter decodes: the normalized payload's
`air` measurements where the formatter normalizes, else the decoded fields whose names
say what they measure (`pm2_5`, `temperature_c`, `humidity_pct` ...). Other fields (the
battery, counters) are kept aside as extras; a message with no measurement at all is refused.

Each format is a `PushFormat` in `PUSH_FORMATS`: its name (an MQTT subscription's `format`),
its HTTP route on the receiver, and its parser. A new format is its parser and one entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from ingest.events import MAX_PERIOD_S, MAX_YEAR, MIN_YEAR

AIRROHR_MEASURES: dict[str, tuple[str, str]] = {
    "P0": ("pm1", "ug/m3"), "P1": ("pm10", "ug/m3"), "P2": ("pm25", "ug/m3"), "P4": ("pm4", "ug/m3"),
    "P01": ("pm0_1", "ug/m3"), "P03": ("pm0_3", "ug/m3"), "P05": ("pm0_5", "ug/m3"), "P5": ("pm5", "ug/m3"),
    "N01": ("nc0_1", "1/cm3"), "N03": ("nc0_3", "1/cm3"), "N05": ("nc0_5", "1/cm3"), "N1": ("nc1", "1/cm3"),
    "N25": ("nc2_5", "1/cm3"), "N4": ("nc4", "1/cm3"), "N5": ("nc5", "1/cm3"), "N10": ("nc10", "1/cm3"),
    "TS": ("typical_particle_size", "um"),
    "temperature": ("temperature", "C"), "humidity": ("humidity", "%"), "pressure": ("pressure", "hPa"),
    "co2": ("co2", "ppm"), "height": ("altitude", "m"),
    "noise_LAeq": ("noise_laeq", "dB(A)"), "noise_LA_min": ("noise_la_min", "dB(A)"),
    "noise_LA_max": ("noise_la_max", "dB(A)"),
}
"""What an airrohr value type measures, by the part after its sensor's prefix (SDS, PMS, HPM,
NPM, IPS, SPS30 for dust; BME280, BMP280, BMP, HTU21D, SHT3X, SCD30, DS18B20 and the bare
DHT22 names for climate; DNMS for noise; GPS). Mass in µg/m³, counts per cm³ (the firmware
scales NextPM's per litre), noise in dB(A); pressure arrives in Pa and is kept in hPa."""
AIRROHR_DEVICE_FIELDS = {"samples", "min_micro", "max_micro", "interval", "signal", "GPS_date", "GPS_time",
                         "GPS_timestamp", "durP1", "ratioP1", "durP2", "ratioP2"}
"""The device's own health (loop timing, Wi-Fi signal), GPS clock fields and the PPD42NS's
pulse timings: kept as extras, not measurements."""
PPD42NS_COUNTS = {"P1": ("ppd_p1", "1/L"), "P2": ("ppd_p2", "1/L")}
"""The old Shinyei PPD42NS sends bare P1/P2 beside its ratios: particle counts, not PM mass."""


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
    position: tuple[float, float] | None = None
    """Where the device says it is (a GPS on board), else the registry's position is used."""


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
    """An airrohr push (see the module). Every value type the firmware sends is taken: known
    measurements under their names, anything else numeric under its own lower-case name with
    no unit (stored and queryable, no AQI) and listed in `extras["unknown"]`; a value that is
    not a number is left out with its reason (`extras["unreadable"]`). Only a message with no
    value at all is refused."""
    data = _json(body)
    if not isinstance(data, dict) or not isinstance(data.get("sensordatavalues"), list):
        raise FormatError("missing the 'sensordatavalues' list")
    device = sensor_header or (f"esp8266-{data['esp8266id']}" if data.get("esp8266id") else None)
    if not device:
        raise FormatError("no sensor id (X-Sensor header or esp8266id)")
    items = data["sensordatavalues"]
    if len(items) > MAX_READINGS_PER_MESSAGE:
        raise FormatError(f"{len(items)} values in one message (at most {MAX_READINGS_PER_MESSAGE})")
    types = {str(item.get("value_type")) for item in items if isinstance(item, dict)}
    ppd = bool(types & {"ratioP1", "ratioP2"})
    values: dict[str, float] = {}
    units: dict[str, str] = {}
    extras: dict[str, Any] = {"software_version": data.get("software_version")}
    unknown: list[str] = []
    unreadable: list[str] = []
    latitude = longitude = None
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "value_type" not in item or "value" not in item:
            raise FormatError(f"sensordatavalues[{index}] needs value_type and value")
        value_type = str(item["value_type"])[:64]
        if value_type in AIRROHR_DEVICE_FIELDS:
            extras[value_type] = item["value"]
            continue
        try:
            value = _number(item["value"], value_type)
        except FormatError as exc:
            unreadable.append(str(exc))
            continue
        if value_type in ("GPS_lat", "GPS_lon"):
            latitude, longitude = (value, longitude) if value_type == "GPS_lat" else (latitude, value)
            continue
        prefix, _, measured = value_type.partition("_") if "_" in value_type else ("", "", value_type)
        known = PPD42NS_COUNTS.get(measured) if ppd and not prefix else AIRROHR_MEASURES.get(measured)
        if known is None:
            name, unit = re.sub(r"[^a-z0-9_.+-]", "_", value_type.lower()), ""
            unknown.append(value_type)
        else:
            name, unit = known
            if name == "pressure" and value > 2000:  # BME280/BMP280/BMP send Pa
                value /= 100
            if name in values:  # a second sensor measuring the same: under its own prefix
                name = f"{(prefix or 'dht22').lower()}_{name}"  # the DHT22's names are bare
        values[name], units[name] = value, unit
    if not values:
        why = "; ".join(unreadable) or "no measured values"
        raise FormatError(why)
    if unknown:
        extras["unknown"] = unknown
    if unreadable:
        extras["unreadable"] = unreadable
    position = None
    fixed = (latitude is not None and longitude is not None and -90 <= latitude <= 90
             and -180 <= longitude <= 180 and (latitude, longitude) != (0.0, 0.0))  # no fix: 0, 0
    if fixed:
        assert latitude is not None and longitude is not None
        position = (latitude, longitude)
    return ParsedReading(device, values, units, period_s=send_interval_s, extras=extras, position=position)


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
        stamp = _time(item["time"], f"{where}time") if "time" in item else None
        period = item.get("period_s")
        if period is not None and (type(period) is not int or not 0 < period <= MAX_PERIOD_S):
            raise FormatError(f"{where}period_s must be a whole number of seconds from 1 to {MAX_PERIOD_S}")
        parsed.append(ParsedReading(item["sensor_id"], values, {k: str(raw_units[k]) for k in values},
                                    time=stamp, period_s=period))
    return parsed


def _time(text: Any, where: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError as exc:
        raise FormatError(f"{where}: {exc}") from exc
    if stamp.tzinfo is None:
        raise FormatError(f"{where} must include a UTC offset")
    if not MIN_YEAR < stamp.year < MAX_YEAR:
        raise FormatError(f"{where} {stamp.isoformat()} is outside the years {MIN_YEAR}-{MAX_YEAR}")
    return stamp


TTN_MEASUREMENTS: dict[str, tuple[str, str]] = {
    "pm1": ("pm1", "ug/m3"), "pm1_0": ("pm1", "ug/m3"), "pm25": ("pm25", "ug/m3"),
    "pm2_5": ("pm25", "ug/m3"), "pm10": ("pm10", "ug/m3"), "pm10_0": ("pm10", "ug/m3"),
    "no2": ("no2", "ug/m3"), "o3": ("o3", "ug/m3"), "so2": ("so2", "ug/m3"), "co": ("co", "ppm"),
    "co2": ("co2", "ppm"), "temperature": ("temperature", "C"), "temp": ("temperature", "C"),
    "humidity": ("humidity", "%"), "relative_humidity": ("humidity", "%"),
    "relativehumidity": ("humidity", "%"), "rh": ("humidity", "%"), "pressure": ("pressure", "hPa"),
    "barometric_pressure": ("pressure", "hPa"),
}
"""Decoded field names (lower case, without a unit suffix) that say what they measure."""
TTN_UNIT_SUFFIXES: dict[str, str] = {
    "c": "C", "pct": "%", "percent": "%", "hpa": "hPa", "ppm": "ppm", "ppb": "ppb", "ugm3": "ug/m3",
    "ug_m3": "ug/m3"}
"""A name's unit, where the formatter says it (`temperature_c`): it wins over the default."""
TTN_NORMALIZED_AIR: dict[str, tuple[str, str]] = {
    "temperature": ("temperature", "C"), "relativeHumidity": ("humidity", "%"),
    "pressure": ("pressure", "hPa"), "co2": ("co2", "ppm")}
"""The Things Stack's normalized payload (`air.*`), in the units its schema fixes."""
_SUFFIX = re.compile(r"^(?P<name>.+?)_(?P<unit>" + "|".join(sorted(TTN_UNIT_SUFFIXES, key=len, reverse=True))
                     + r")$")


def _ttn_measurement(key: str) -> tuple[str, str] | None:
    name = key.lower()
    known = TTN_MEASUREMENTS.get(name)
    if known is not None:
        return known
    split = _SUFFIX.match(name)
    if split is not None and split["name"] in TTN_MEASUREMENTS:
        return TTN_MEASUREMENTS[split["name"]][0], TTN_UNIT_SUFFIXES[split["unit"]]
    return None


def parse_ttn_uplink(body: bytes, device_hint: str | None = None) -> list[ParsedReading]:
    """One uplink of The Things Stack v3 (see the module)."""
    data = _json(body)
    if not isinstance(data, dict):
        raise FormatError("a The Things Stack message must be an object")
    uplink = data.get("uplink_message")
    if not isinstance(uplink, dict):
        other = next((k for k in data if k.endswith(("_accept", "_ack", "_nack", "_sent", "_failed",
                                                      "_queued", "_invalidated", "_solved"))), None)
        raise FormatError(f"not an uplink message ({other or 'no uplink_message'}): send only uplinks here")
    ids = data.get("end_device_ids")
    device = ids.get("device_id") if isinstance(ids, dict) else None
    if not isinstance(device, str) or not device:
        raise FormatError("end_device_ids.device_id is required")
    values: dict[str, float] = {}
    units: dict[str, str] = {}
    ignored: list[str] = []
    normalized = uplink.get("normalized_payload")
    for index, item in enumerate(normalized if isinstance(normalized, list) else []):
        air = item.get("air") if isinstance(item, dict) else None
        if isinstance(air, dict) and index == 0:  # one reading per message: the first instant
            for key, value in air.items():
                if key in TTN_NORMALIZED_AIR:
                    name, unit = TTN_NORMALIZED_AIR[key]
                    values[name], units[name] = _number(value, f"normalized_payload.air.{key}"), unit
    decoded = uplink.get("decoded_payload")
    if decoded is not None and not isinstance(decoded, dict):
        raise FormatError("uplink_message.decoded_payload must be an object")
    for key, value in (decoded or {}).items():
        measured = _ttn_measurement(str(key))
        if measured is None or isinstance(value, bool) or not isinstance(value, int | float | str):
            ignored.append(str(key))
            continue
        name, unit = measured
        if name not in values:  # the normalized form, where there is one, wins
            values[name], units[name] = _number(value, f"decoded_payload.{key}"), unit
    if not values:
        seen = sorted(map(str, decoded or {}))
        raise FormatError(f"no measurement in the uplink (decoded fields: {seen or 'none'}; is a payload "
                          "formatter set for this device?)")
    stamp = uplink.get("received_at") or data.get("received_at")
    time = _time(stamp, "received_at") if stamp is not None else None
    extras: dict[str, Any] = {"f_port": uplink.get("f_port"), "f_cnt": uplink.get("f_cnt")}
    if ignored:
        extras["ignored"] = ignored
    return [ParsedReading(device, values, units, time=time, extras=extras)]


@dataclass(frozen=True)
class PushFormat:
    name: str
    """What an MQTT subscription names as its `format`."""
    path: str
    """Its route on the HTTP receiver."""
    parse: Callable[[bytes, str | None], list[ParsedReading]]
    """The body, and the device named outside it (the X-Sensor header, or an MQTT topic's
    last level where `device_in_topic`), to its readings; FormatError says what is wrong."""
    device_in_topic: bool = False


PUSH_FORMATS: dict[str, PushFormat] = {push.name: push for push in (
    PushFormat("generic", "/readings", lambda body, device: parse_generic(body)),
    PushFormat("sensor-community", "/sensor-community",
               lambda body, device: [parse_sensor_community(body, device)], device_in_topic=True),
    PushFormat("ttn", "/ttn", parse_ttn_uplink),
)}
