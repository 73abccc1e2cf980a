"""Sign-in throttling: a burst of wrong passwords for one user, or from one address, is
refused for a while (429 with Retry-After) before any password is checked, so guessing is
slow and an argon2 storm cannot take the console's CPU. Per console process; a success
clears the user's count."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoginThrottle:
    per_user: int = 5
    per_address: int = 20
    window_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))

    def _recent(self, key: str) -> deque[float]:
        stamps = self._failures[key]
        cutoff = self.clock() - self.window_s
        while stamps and stamps[0] <= cutoff:
            stamps.popleft()
        return stamps

    def retry_after(self, username: str, address: str) -> float | None:
        """Seconds to wait before another try is heard, or None when it may go ahead."""
        waits = []
        limits = ((f"user:{username.lower()}", self.per_user), (f"addr:{address}", self.per_address))
        for key, limit in limits:
            stamps = self._recent(key)
            if len(stamps) >= limit:
                waits.append(stamps[0] + self.window_s - self.clock())
        return max(waits) if waits else None

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        for key in (f"user:{username.lower()}", f"addr:{address}"):
            self._recent(key).append(now)
        if len(self._failures) > 100_000:  # a flood of made-up names: forget the quiet ones
            for key in [k for k, v in self._failures.items() if not v]:
                del self._failures[key]

    def succeeded(self, username: str) -> None:
        self._failures.pop(f"user:{username.lower()}", None)
