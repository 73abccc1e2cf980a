"""A Faust worker that a signal stops within a bounded time, whatever is stuck.

Stopping flushes what it can: agents that acknowledge by hand give way at once (see
agents/policy.py GaveWay), Faust waits for the rest and commits what was acknowledged. A
wait no agent can give up (a send while the broker is away, a hung library call) would
make SIGTERM wait for ever; an orchestrator would then SIGKILL it at a moment of its
choosing. This one exits by itself once `stop_timeout_s` has passed, saying so: what it had
not acknowledged is uncommitted, so the partitions' next owner reads it again.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import faust

log = logging.getLogger(__name__)

EXIT_STOP_TIMED_OUT = 70


class BoundedStopWorker(faust.Worker):
    """`on_clean_stop`: called once the app has stopped without a crash (not after a timed-out
    stop, which exits at once)."""

    def __init__(self, app: faust.App, *, stop_timeout_s: float,
                 on_clean_stop: Callable[[], object] | None = None, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.stop_timeout_s = stop_timeout_s
        self.on_clean_stop = on_clean_stop
        self._deadline: threading.Timer | None = None

    def _shutdown_loop(self) -> None:
        crashed = self.crash_reason or getattr(self.app, "crash_reason", None)
        if self.on_clean_stop is not None and not crashed:
            self.on_clean_stop()
        super()._shutdown_loop()

    def _schedule_shutdown(self, signal_: signal.Signals) -> None:
        if self._deadline is None:
            # a thread, so that it fires even if the event loop itself is stuck
            self._deadline = threading.Timer(self.stop_timeout_s, self._give_up, (signal_,))
            self._deadline.daemon = True
            self._deadline.start()
        super()._schedule_shutdown(signal_)

    def _give_up(self, signal_: signal.Signals) -> None:
        log.error("%s: the worker did not stop within %.0f s; exiting now (unacknowledged messages are "
                  "read again by the partitions' next owner)", signal_.name, self.stop_timeout_s)
        logging.shutdown()
        os._exit(EXIT_STOP_TIMED_OUT)
