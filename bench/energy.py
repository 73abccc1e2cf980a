"""Energy where the machine exposes it, CPU seconds everywhere: for bench's per-model costs.

RAPL (`/sys/class/powercap/intel-rapl:*/energy_uj`, x86 hosts; it wraps at
`max_energy_range_uj`) gives the package's joules; `nvidia-smi` the GPU's power, sampled.
A machine that exposes neither (a VM, this development box) reports `None`, never a guess.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")


def _rapl_zones() -> list[Path]:
    """The packages (intel-rapl:N), not their sub-zones (intel-rapl:N:M, counted inside them)."""
    if not POWERCAP.is_dir():
        return []
    return sorted(p for p in POWERCAP.glob("intel-rapl:*")
                  if p.name.count(":") == 1 and (p / "energy_uj").is_file())


def _read(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def gpu_watts() -> float | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=power.draw", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=5, check=True).stdout
        return sum(float(line) for line in out.split() if line.strip())
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


@dataclass(frozen=True)
class Cost:
    cpu_s: float
    wall_s: float
    cpu_joules: float | None
    gpu_joules: float | None

    def per(self, count: int) -> dict[str, float | None]:
        def each(value: float | None) -> float | None:
            return None if value is None else round(value / count, 4)

        return {"cpu_s_per_frame": round(self.cpu_s / count, 5),
                "cpu_joules_per_frame": each(self.cpu_joules), "gpu_joules_per_frame": each(self.gpu_joules)}


def measure(work: Callable[[], object]) -> Cost:
    """Run `work` once; its CPU seconds, wall seconds and, where exposed, joules."""
    zones = _rapl_zones()
    before = [_read(z / "energy_uj") for z in zones]
    watts_before = gpu_watts()
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    after = [_read(z / "energy_uj") for z in zones]
    joules = None
    if zones and None not in before and None not in after:
        total = 0.0
        for zone, start, end in zip(zones, before, after, strict=True):
            assert start is not None and end is not None
            span = end - start
            if span < 0:  # the counter wrapped
                span += _read(zone / "max_energy_range_uj") or 0
            total += span / 1e6
        joules = total
    watts_after = gpu_watts()
    gpu = None if watts_before is None or watts_after is None else (watts_before + watts_after) / 2 * wall
    return Cost(cpu, wall, joules, gpu)
