"""Exponential backoff with full jitter, for reconnecting to cameras and sensors.

Jitter spreads the reconnect attempts of many sources that dropped together (a
network blip takes down a whole street), so they do not hammer the recorder at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial_s: float = 1.0
    max_s: float = 60.0
    multiplier: float = 2.0
    jitter: bool = True
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def next_delay(self) -> float:
        ceiling = min(self.max_s, self.initial_s * self.multiplier ** self.attempt)
        self.attempt += 1
        return self.rng.uniform(0, ceiling) if self.jitter else ceiling

    def reset(self) -> None:
        self.attempt = 0
