"""Adaptive sampling rate: idle slowly, sample fast while something is happening.

A static scene is checked at `idle_fps`; motion (or a rule asking for a closer look
through `boost`) raises the rate to `active_fps` for `hold_s` after the last trigger.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RateConfig:
    active_fps: float = 2.0
    idle_fps: float = 0.5
    hold_s: float = 10.0


class AdaptiveRate:
    def __init__(self, config: RateConfig) -> None:
        if config.idle_fps > config.active_fps:
            raise ValueError("idle_fps must not exceed active_fps")
        self.config = config
        self._active_until = float("-inf")

    def boost(self, now: float, seconds: float | None = None) -> None:
        self._active_until = max(self._active_until, now + (seconds or self.config.hold_s))

    def active(self, now: float) -> bool:
        return now < self._active_until

    def fps(self, now: float) -> float:
        return self.config.active_fps if self.active(now) else self.config.idle_fps

    def interval(self, now: float) -> float:
        return 1.0 / self.fps(now)
