"""A worker whose only agent never finishes its first message: `python -m
tests.faults.stuck_agent_worker BOOTSTRAP TOPIC STOP_TIMEOUT_S`. Faust's stop waits for that
message for ever; the bounded-stop worker exits anyway."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import faust

from citywatch.bounded_worker import BoundedStopWorker

log = logging.getLogger("stuck")


def main() -> None:
    bootstrap, topic, stop_timeout_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
    app = faust.App(topic, broker=f"kafka://{bootstrap}", store="memory://", web_enabled=False,
                    consumer_auto_offset_reset="earliest")

    @app.agent(app.topic(topic, key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw"))
    async def stuck(stream: Any) -> None:
        async for _ in stream:
            log.warning("stuck on a message")
            await asyncio.Event().wait()  # an await nothing ends

    BoundedStopWorker(app, loglevel="info", stop_timeout_s=stop_timeout_s).execute_from_commandline()


if __name__ == "__main__":
    main()
