import json
from datetime import UTC, datetime, timedelta

import pytest

from ingest.aq_formats import FormatError, parse_generic, parse_sensor_community
from ingest.aq_receiver import AirQualityReceiver
from ingest.aqi import molar_volume, to_unit
from ingest.events import DataQuality
from ingest.sensors import SensorRegistry, SensorWatch
from ingest.settings import SensorSettings
from ingest.sink import MemorySink
from ingest.validation import out_of_range

# A real airrohr (Sensor.Community firmware) push body, SDS011 + BME280.
AIRROHR = json.dumps({
    "esp8266id": "13572468", "software_version": "NRZ-2020-133",
    "sensordatavalues": [
        {"value_type": "SDS_P1", "value": "17.32"}, {"value_type": "SDS_P2", "value": "9.10"},
        {"value_type": "BME280_temperature", "value": "11.80"},
        {"value_type": "BME280_humidity", "value": "81.43"},
        {"value_type": "BME280_pressure", "value": "100713.44"},
        {"value_type": "samples", "value": "5054082"}, {"value_type": "signal", "value": "-71"},
    ],
}).encode()
T0 = datetime(2026, 11, 24, 10, tzinfo=UTC)


def registry() -> SensorRegistry:
    return SensorRegistry([
        SensorSettings(id="aq-park", device_id="esp8266-13572468", expected_interval_s=145),
        SensorSettings(id="aq-7", device_id="aq-7", expected_interval_s=3600)])


def test_sensor_community_body_maps_value_types() -> None:
    parsed = parse_sensor_community(AIRROHR, "esp8266-13572468")
    assert parsed.values == {"pm10": 17.32, "pm25": 9.10, "temperature": 11.8, "humidity": 81.43,
                             "pressure": pytest.approx(1007.1344)}
    assert parsed.units["pm25"] == "ug/m3" and parsed.units["pressure"] == "hPa"
    with pytest.raises(FormatError, match="sensordatavalues"):
        parse_sensor_community(b'{"esp8266id": "1"}', None)
    with pytest.raises(FormatError, match="SDS_P2: 'high' is not a number"):
        parse_sensor_community(b'{"esp8266id":"1","sensordatavalues":[{"value_type":"SDS_P2","value":"high"}]}',
                               None)


def test_generic_format_is_strict() -> None:
    [reading] = parse_generic(b'{"sensor_id":"aq-7","time":"2026-11-24T10:00:00Z","period_s":3600,'
                              b'"values":{"no2":41.2},"units":{"no2":"ug/m3"}}')
    assert reading.time == T0 and reading.values == {"no2": 41.2}
    for body, reason in [
        (b"[1]", "item 0: a reading must be an object"),
        (b'{"sensor_id":"x","values":{"no2":1}}', "no unit for"),
        (b'{"sensor_id":"x","values":{"no2":1},"units":{"no2":"ppb"},"tim":"x"}', "unknown keys"),
        (b'{"sensor_id":"x","time":"2026-11-24T10:00:00","values":{"a":1},"units":{"a":"%"}}', "UTC offset"),
        (b"{", "not JSON"),
    ]:
        with pytest.raises(FormatError, match=reason):
            parse_generic(body)


def test_units_follow_the_temperature() -> None:
    assert molar_volume(0) == pytest.approx(22.414)
    cold = to_unit("no2", 100, "ppb", "ug/m3", temperature_c=0)
    standard = to_unit("no2", 100, "ppb", "ug/m3")
    assert cold == pytest.approx(205.3, rel=1e-3) and standard == pytest.approx(188.2, rel=1e-3)


def test_out_of_range_values_are_named() -> None:
    assert out_of_range({"pm25": 9.1, "humidity": 81}, {"pm25": "ug/m3", "humidity": "%"}) == []
    assert out_of_range({"pm25": -3.0, "humidity": 140}, {"pm25": "ug/m3", "humidity": "%"}) == [
        "pm25=-3.0 ug/m3 outside 0..1500 ug/m3", "humidity=140 % outside 0..100 %"]
    assert out_of_range({"no2": 7000}, {"no2": "ug/m3"}) == ["no2=7000 ug/m3 outside 0..3000 ppb"]


async def test_receiver_accepts_registered_sensors_and_dead_letters_the_rest() -> None:
    sink = MemorySink()
    receiver = AirQualityReceiver(registry(), sink, clock=lambda: T0)
    assert await receiver.receive("sensor-community", AIRROHR, "esp8266-13572468") == (201, "accepted 1")
    [reading] = sink.readings
    assert reading.source_id == "aq-park" and reading.values["pm25"] == 9.1
    assert reading.aqi is None  # a 145 s average has no EPA PM index (that is a 24 h average)
    hourly = b'{"sensor_id":"aq-7","period_s":3600,"values":{"no2":120},"units":{"no2":"ppb"}}'
    assert (await receiver.receive("generic", hourly))[0] == 201
    # NO2 120 ppb (1 h): 101 + (150 - 101) / (360 - 101) * (120 - 101) = 104.6
    assert sink.readings[-1].aqi == 105 and sink.readings[-1].aqi_pollutant == "no2"

    status, reason = await receiver.receive("sensor-community", AIRROHR, "esp8266-99999")
    assert status == 404 and "unknown sensor 'esp8266-99999'" in reason
    status, reason = await receiver.receive("generic", b'{"sensor_id":"aq-7","values":{"pm25":-5},'
                                                       b'"units":{"pm25":"ug/m3"}}')
    assert status == 400 and "pm25=-5.0 ug/m3 outside" in reason
    assert [(r.reason, stream) for r, stream in sink.rejects] == [
        ("sensor-community: unknown sensor 'esp8266-99999' (not in the sensor registry)", "readings"),
        (f"generic: {reason.removeprefix('generic: ')}", "readings")]
    assert sink.rejects[0][0].raw == AIRROHR


def test_stuck_values_and_missing_reports_become_quality_events() -> None:
    watch = SensorWatch(stuck_after=3, missing_after_intervals=3)
    spec = SensorSettings(id="aq-park", device_id="esp8266-1", expected_interval_s=100)
    events: list[DataQuality] = []
    for i, pm in enumerate([5.0, 7.0, 7.0, 7.0, 7.0, 8.0]):
        events += watch.observe(spec, T0 + timedelta(seconds=100 * i), {"pm25": pm, "humidity": 50.0 + i})
    assert [(e.issue, e.active, e.field) for e in events] == [
        ("stuck_value", True, "pm25"), ("stuck_value", False, "pm25")]
    last = T0 + timedelta(seconds=500)
    assert watch.check_missing([spec], last + timedelta(seconds=299)) == []
    [missing] = watch.check_missing([spec], last + timedelta(seconds=301))
    assert (missing.issue, missing.active) == ("missing_reports", True)
    assert watch.check_missing([spec], last + timedelta(seconds=900)) == []  # reported once
    [back] = watch.observe(spec, last + timedelta(seconds=1000), {"pm25": 9.0})
    assert (back.issue, back.active) == ("missing_reports", False)


def test_rolling_average_gives_the_24h_pm_index_once_the_window_is_covered() -> None:
    from ingest.aqi_average import RollingAqi

    rolling = RollingAqi()
    results = []
    for i in range(24 * 3600 // 150):  # one report every 150 s for 24 h
        time = T0 + timedelta(seconds=150 * i)
        pm25 = 35.0 if i % 2 else 36.0
        results.append(rolling.add("aq-park", time, {"pm25": pm25}, {"pm25": "ug/m3"}, 150))
    assert results[0] is None  # minutes of data are no 24 h average
    hours_to_complete = next(i for i, r in enumerate(results) if r is not None) * 150 / 3600
    assert hours_to_complete == pytest.approx(18, abs=0.1)  # 75 % of 24 h
    assert results[-1] == (101, "pm25")  # mean 35.5 ug/m3 -> 101 (2024 breakpoints)


def ttn_uplink(decoded: dict[str, object] | None, normalized: list[dict[str, object]] | None = None,
               device: str = "aq-node-3") -> bytes:
    """An uplink as The Things Stack v3 sends it (webhook body, or its MQTT `.../up` topic)."""
    uplink: dict[str, object] = {
        "session_key_id": "AXBSH1Pk6Z0G166RlH16CQ==", "f_port": 2, "f_cnt": 1834, "frm_payload": "ASsBKAAA",
        "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-1", "eui": "AA555A0000000101"},
                         "time": "2026-05-25T13:42:11.392Z", "rssi": -68, "snr": 9.2}],
        "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}},
                     "frequency": "868100000"},
        "received_at": "2026-05-25T13:42:11.401937162Z", "consumed_airtime": "0.061696s"}
    if decoded is not None:
        uplink["decoded_payload"] = decoded
    if normalized is not None:
        uplink["normalized_payload"] = normalized
    return json.dumps({
        "end_device_ids": {"device_id": device, "application_ids": {"application_id": "city-air"},
                           "dev_eui": "70B3D57ED005B89A", "join_eui": "0000000000000001",
                           "dev_addr": "260BABCD"},
        "correlation_ids": ["as:up:01HX6YGQ7E0V83YRZ7K4S5J4ZN"], "received_at": "2026-05-25T13:42:11.412Z",
        "uplink_message": uplink}).encode()


def test_ttn_uplinks_map_the_decoded_fields_that_say_what_they_measure() -> None:
    from ingest.aq_formats import parse_ttn_uplink

    [parsed] = parse_ttn_uplink(ttn_uplink({"pm2_5": 9.1, "PM10": 14, "temperature_c": 21.4,
                                            "humidity_pct": 40, "battery_v": 3.62, "alarm": False}))
    assert parsed.device_id == "aq-node-3"
    assert parsed.values == {"pm25": 9.1, "pm10": 14.0, "temperature": 21.4, "humidity": 40.0}
    assert parsed.units == {"pm25": "ug/m3", "pm10": "ug/m3", "temperature": "C", "humidity": "%"}
    assert parsed.time == datetime(2026, 5, 25, 13, 42, 11, 401937, tzinfo=UTC)  # nanoseconds, cut to µs
    assert parsed.extras["ignored"] == ["battery_v", "alarm"] and parsed.extras["f_cnt"] == 1834
    no2_ppb = parse_ttn_uplink(ttn_uplink({"no2_ppb": 21}))[0]
    assert (no2_ppb.values, no2_ppb.units) == ({"no2": 21.0}, {"no2": "ppb"})  # the suffix names the unit


def test_ttn_normalized_payloads_win_and_other_messages_are_refused_with_the_reason() -> None:
    from ingest.aq_formats import parse_ttn_uplink

    air = {"temperature": 21.5, "relativeHumidity": 41.0, "pressure": 1013.2}
    normalized: list[dict[str, object]] = [{"air": air}]
    [parsed] = parse_ttn_uplink(ttn_uplink({"temp": 99, "pm2_5": 8}, normalized))
    assert parsed.values == {"temperature": 21.5, "humidity": 41.0, "pressure": 1013.2, "pm25": 8.0}
    with pytest.raises(FormatError, match=r"no measurement .*'battery_v'.*payload formatter"):
        parse_ttn_uplink(ttn_uplink({"battery_v": 3.6}))
    with pytest.raises(FormatError, match="decoded fields: none"):
        parse_ttn_uplink(ttn_uplink(None))  # no payload formatter: only the raw frm_payload
    join = json.dumps({"end_device_ids": {"device_id": "aq-node-3"}, "join_accept": {"session_key_id": "x"}})
    with pytest.raises(FormatError, match=r"not an uplink message \(join_accept\)"):
        parse_ttn_uplink(join.encode())
    with pytest.raises(FormatError, match="device_id is required"):
        parse_ttn_uplink(ttn_uplink({"pm2_5": 1}, device=""))
    with pytest.raises(FormatError, match=r"decoded_payload\.pm2_5"):
        parse_ttn_uplink(ttn_uplink({"pm2_5": "lots"}))


async def test_the_receiver_takes_ttn_uplinks_of_registered_devices() -> None:
    sink = MemorySink()
    receiver = AirQualityReceiver(SensorRegistry([SensorSettings(id="aq-bridge", device_id="aq-node-3")]),
                                  sink, clock=lambda: datetime(2026, 5, 25, 14, tzinfo=UTC))
    assert await receiver.receive("ttn", ttn_uplink({"pm2_5": 9.1})) == (201, "accepted 1")
    assert [(r.source_id, r.values) for r in sink.readings] == [("aq-bridge", {"pm25": 9.1})]
    status, reason = await receiver.receive("ttn", ttn_uplink({"pm2_5": 9.1}, device="stranger"))
    assert status == 404 and reason.startswith("ttn: unknown sensor 'stranger'")
    assert [item.reason for item, _ in sink.rejects] == [reason]


def airrohr(*pairs: tuple[str, str]) -> bytes:
    return json.dumps({"esp8266id": "13572468", "software_version": "NRZ-2021-134-B4",
                       "sensordatavalues": [{"value_type": t, "value": v} for t, v in pairs]}).encode()


def test_every_value_type_the_airrohr_firmware_sends_is_taken() -> None:
    parsed = parse_sensor_community(airrohr(
        ("SDS_P1", "17.3"), ("SDS_P2", "9.1"),
        ("SPS30_P0", "5.1"), ("SPS30_P2", "8.2"), ("SPS30_P4", "8.9"), ("SPS30_P1", "9.3"),
        ("SPS30_N05", "35.1"), ("SPS30_N1", "41.0"), ("SPS30_N25", "41.7"), ("SPS30_N4", "41.8"),
        ("SPS30_N10", "41.8"), ("SPS30_TS", "0.52"),
        ("NPM_P0", "4.0"), ("NPM_N1", "12.5"),
        ("BME280_temperature", "11.80"), ("BME280_humidity", "81.43"), ("BME280_pressure", "100713.44"),
        ("SHT3X_temperature", "11.5"), ("temperature", "12.0"),  # a DHT22 beside them
        ("SCD30_co2", "612"), ("DNMS_noise_LAeq", "48.3"), ("DNMS_noise_LA_min", "41.2"),
        ("DNMS_noise_LA_max", "63.0"),
        ("GPS_lat", "48.778"), ("GPS_lon", "9.180"), ("GPS_height", "250.1"), ("GPS_date", "12/01/2026"),
        ("samples", "5054082"), ("signal", "-71"),
    ), None)
    assert parsed.device_id == "esp8266-13572468"
    values, units = parsed.values, parsed.units
    assert (values["pm10"], values["pm25"]) == (17.3, 9.1)  # the first dust sensor takes the plain names
    assert (values["sps30_pm25"], values["pm4"], values["nc0_5"], values["typical_particle_size"]) == (
        8.2, 8.9, 35.1, 0.52)
    assert values["pm1"] == 5.1 and values["npm_pm1"] == 4.0 and units["nc1"] == "1/cm3"
    assert values["pressure"] == pytest.approx(1007.1344) and units["pressure"] == "hPa"
    climate = (values["temperature"], values["sht3x_temperature"], values["dht22_temperature"])
    assert climate == (11.8, 11.5, 12.0)
    assert (values["co2"], units["co2"]) == (612.0, "ppm")
    assert (values["noise_laeq"], units["noise_laeq"], values["noise_la_max"]) == (48.3, "dB(A)", 63.0)
    assert parsed.position == (48.778, 9.18) and values["altitude"] == 250.1
    assert parsed.extras["samples"] == "5054082" and "unknown" not in parsed.extras
    assert not out_of_range(values, units)


def test_an_unknown_value_type_is_kept_and_a_bad_value_costs_only_itself() -> None:
    parsed = parse_sensor_community(airrohr(("SDS_P2", "9.1"), ("XYZ_radon", "41"), ("SDS_P1", "")), None)
    assert parsed.values == {"pm25": 9.1, "xyz_radon": 41.0} and parsed.units["xyz_radon"] == ""
    assert parsed.extras["unknown"] == ["XYZ_radon"]
    assert parsed.extras["unreadable"] == ["SDS_P1: '' is not a number"]
    ppd = parse_sensor_community(airrohr(("durP1", "1234"), ("ratioP1", "0.5"), ("P1", "261.2"),
                                         ("durP2", "99"), ("ratioP2", "0.1"), ("P2", "51.6")), None)
    assert ppd.values == {"ppd_p1": 261.2, "ppd_p2": 51.6} and ppd.units["ppd_p1"] == "1/L"
    no_fix = parse_sensor_community(airrohr(("SDS_P2", "1"), ("GPS_lat", "0"), ("GPS_lon", "0")), None)
    assert no_fix.position is None


async def test_the_receiver_keeps_unknown_types_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    sink = MemorySink()
    receiver = AirQualityReceiver(registry(), sink, clock=lambda: T0)
    body = airrohr(("SPS30_P2", "8.2"), ("SPS30_P4", "8.9"), ("DNMS_noise_LAeq", "48.3"), ("XYZ_radon", "41"),
                   ("GPS_lat", "48.778"), ("GPS_lon", "9.180"))
    for _ in range(3):
        assert (await receiver.receive("sensor-community", body, "esp8266-13572468"))[0] == 201
    reading = sink.readings[-1]
    assert reading.values["pm25"] == 8.2 and reading.values["xyz_radon"] == 41.0
    assert reading.position is not None and (reading.position.lat, reading.position.lon) == (48.778, 9.18)
    assert sum("XYZ_radon" in record.message for record in caplog.records) == 1


async def test_the_epa_correction_keeps_the_raw_value_beside_the_corrected() -> None:
    from ingest.corrections import correct_pm25

    values, units = correct_pm25({"pm25": 30.0, "humidity": 60.0}, {"pm25": "ug/m3", "humidity": "%"},
                                 "us-epa-2021")
    expected = 0.524 * 30 - 0.0862 * 60 + 5.75
    assert values == {"pm25": pytest.approx(expected), "humidity": 60.0, "pm25_raw": 30.0}
    assert units["pm25_raw"] == "ug/m3"
    no_humidity = correct_pm25({"pm25": 30.0}, {"pm25": "ug/m3"}, "us-epa-2021")
    assert no_humidity == ({"pm25": 30.0}, {"pm25": "ug/m3"})
    assert correct_pm25({"pm25": 0.5, "humidity": 99.0}, {"pm25": "ug/m3", "humidity": "%"},
                        "us-epa-2021")[0]["pm25"] == 0.0  # never below zero
    sink = MemorySink()
    receiver = AirQualityReceiver(SensorRegistry([SensorSettings(
        id="aq-pa", device_id="esp8266-13572468", pm25_correction="us-epa-2021")]), sink, clock=lambda: T0)
    body = airrohr(("PMS_P2", "30.0"), ("BME280_humidity", "60.0"), ("BME280_temperature", "20.0"))
    assert (await receiver.receive("sensor-community", body, "esp8266-13572468"))[0] == 201
    [reading] = sink.readings
    assert reading.values["pm25_raw"] == 30.0 and reading.values["pm25"] == pytest.approx(16.298)
    assert reading.nowcast_aqi is None  # one reading: the NowCast needs 2 of the last 3 hours
