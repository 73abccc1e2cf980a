"""Each source under its own supervisor: a failure restarts only it; stopping stops it."""

import asyncio

import pytest

from citywatch.sources import supervised


async def test_a_failing_source_is_restarted_and_may_then_finish() -> None:
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError("the flight log went away")

    await asyncio.wait_for(supervised("drone-1", flaky, restart_max_s=0.01), 5)
    assert runs == 3


async def test_an_error_on_the_way_out_does_not_swallow_the_stop() -> None:
    started = asyncio.Event()

    async def camera() -> None:
        try:
            started.set()
            await asyncio.sleep(3600)
        finally:
            raise RuntimeError("Producer service not yet started")  # publishing health while stopping

    task = asyncio.create_task(supervised("cam-1", camera, restart_max_s=0.01))
    await started.wait()
    task.cancel()
    with pytest.raises((RuntimeError, asyncio.CancelledError)):
        await asyncio.wait_for(task, 5)
    assert task.done()
