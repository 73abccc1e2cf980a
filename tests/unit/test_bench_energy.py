"""bench/energy.py reads RAPL's package counters (with their wrap) and reports None, not a
guess, where the machine exposes no energy."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import energy


def test_joules_come_from_the_package_counters_and_survive_a_wrap(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    package, sub = tmp_path / "intel-rapl:0", tmp_path / "intel-rapl:0:0"
    for zone in (package, sub):
        zone.mkdir()
        (zone / "max_energy_range_uj").write_text("1000000\n")
    (package / "energy_uj").write_text("900000\n")
    (sub / "energy_uj").write_text("5\n")  # a sub-zone is inside its package: not counted twice
    monkeypatch.setattr(energy, "POWERCAP", tmp_path)
    monkeypatch.setattr(energy, "gpu_watts", lambda: None)

    def work() -> None:
        (package / "energy_uj").write_text("400000\n")  # wrapped past 1 J: 0.1 + 0.4 J used

    cost = energy.measure(work)
    assert cost.cpu_joules == pytest.approx(0.5) and cost.gpu_joules is None
    assert cost.per(10)["cpu_joules_per_frame"] == pytest.approx(0.05)


def test_a_machine_without_counters_reports_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(energy, "POWERCAP", tmp_path / "absent")
    monkeypatch.setattr(energy, "gpu_watts", lambda: None)
    cost = energy.measure(lambda: sum(range(1000)))
    assert cost.cpu_joules is None and cost.cpu_s >= 0 and cost.per(1)["cpu_joules_per_frame"] is None
