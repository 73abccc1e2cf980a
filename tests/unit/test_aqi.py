import pytest

from ingest.aqi import UnitError, overall_aqi, sub_index, to_unit


@pytest.mark.parametrize(
    ("pollutant", "value", "unit", "period", "expected"),
    [
        ("pm25", 9.0, "ug/m3", 86400, 50),      # top of "good" (2024 revision)
        ("pm25", 35.4, "ug/m3", 86400, 100),
        ("pm25", 35.45, "ug/m3", 86400, 100),   # truncated to 35.4, not rounded up
        ("pm25", 55.5, "ug/m3", 86400, 151),
        ("no2", 100, "ppb", 3600, 100),
        ("no2", 101, "ppb", 3600, 101),
        ("pm25", 600, "ug/m3", 86400, 500),     # beyond the table: capped
    ],
)
def test_epa_sub_index(pollutant: str, value: float, unit: str, period: int, expected: int) -> None:
    assert sub_index(pollutant, value, unit, period) == expected


def test_wrong_averaging_period_gives_no_index() -> None:
    assert sub_index("pm25", 20.0, "ug/m3", 3600) is None


def test_no2_mass_concentration_is_converted_to_ppb() -> None:
    assert to_unit("no2", 188.1, "ug/m3", "ppb") == pytest.approx(100.0, rel=0.01)
    assert sub_index("no2", 188.1, "ug/m3", 3600) == 99  # 99.97 ppb, truncated to 99
    assert sub_index("no2", 190.0, "ug/m3", 3600) == 100


def test_unknown_unit_is_an_error() -> None:
    with pytest.raises(UnitError):
        to_unit("no2", 1.0, "grains", "ppb")


def test_overall_aqi_takes_the_worst_pollutant() -> None:
    result = overall_aqi({"no2": 200.0, "so2": 10.0}, {"no2": "ppb", "so2": "ppb"}, 3600)
    assert result == (sub_index("no2", 200.0, "ppb", 3600), "no2")
    assert overall_aqi({"no2": 5.0}, {"no2": "ppb"}, None) is None
