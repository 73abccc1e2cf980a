"""The one failure policy: transient failures waited out, permanent ones isolated to the message."""

import asyncio
from collections.abc import Sequence

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from citywatch.agents.policy import PermanentFailure, RetryPolicy, classify, isolating, until_done
from ingest.events import EventFormatError
from notifier.channels import DeliveryError

FAST = RetryPolicy(initial_s=0.001, max_s=0.002)


@pytest.mark.parametrize(("error", "verdict"), [
    (asyncpg.CannotConnectNowError("starting up"), "transient"),
    (asyncpg.AdminShutdownError("terminating connection due to administrator command"), "transient"),
    (asyncpg.TooManyConnectionsError("too many"), "transient"),
    (asyncpg.ConnectionDoesNotExistError("connection was closed"), "transient"),
    (asyncpg.UndefinedTableError("relation does not exist"), "transient"),  # the operator migrates
    (asyncpg.InterfaceError("cannot perform operation: connection is closed"), "transient"),
    (ConnectionRefusedError(111, "refused"), "transient"),
    (TimeoutError(), "transient"),
    (KafkaConnectionError(), "transient"),
    (DeliveryError("SMTP 451", permanent=False), "transient"),
    (asyncpg.NumericValueOutOfRangeError("integer out of range"), "permanent"),
    (asyncpg.CharacterNotInRepertoireError("invalid byte sequence for encoding UTF8: 0x00"), "permanent"),
    (asyncpg.UntranslatableCharacterError(r"\u0000 cannot be converted to text"), "permanent"),
    (asyncpg.exceptions._base.DataError("invalid input for query argument $6: 3000000000"), "permanent"),
    (EventFormatError("invalid Reading"), "permanent"),
    (MessageSizeTooLargeError(), "permanent"),
    (DeliveryError("SMTP 550", permanent=True), "permanent"),
    (ZeroDivisionError(), "permanent"),  # a bug this input trips: the message, not the moment
])
def test_errors_are_classified(error: BaseException, verdict: str) -> None:
    assert classify(error) == verdict


async def test_transient_failures_are_waited_out() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise ConnectionRefusedError(111, "refused")
        return "done"

    assert await until_done(flaky, "test", "flaky work", FAST) == "done"
    assert calls == 4


async def test_a_permanent_failure_is_never_retried() -> None:
    calls = 0

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise asyncpg.NumericValueOutOfRangeError("integer out of range")

    with pytest.raises(PermanentFailure, match="NumericValueOutOfRangeError: integer out of range"):
        await until_done(broken, "test", "storing", FAST)
    assert calls == 1


async def test_a_batch_is_split_until_exactly_the_bad_messages_are_rejected() -> None:
    done: list[int] = []
    rejected: dict[int, str] = {}
    bad = {3, 17, 18}

    async def store(batch: Sequence[int]) -> None:
        if bad & set(batch):
            raise asyncpg.NumericValueOutOfRangeError("integer out of range")
        done.extend(batch)

    async def reject(item: int, reason: str) -> None:
        rejected[item] = reason

    count = await isolating(list(range(40)), store, reject, "test", "storing", FAST)
    assert count == 3
    assert sorted(rejected) == sorted(bad)
    assert all("integer out of range" in reason for reason in rejected.values())
    assert done == [i for i in range(40) if i not in bad]  # every other one, in order


async def test_a_transient_failure_inside_a_batch_loses_and_rejects_nothing() -> None:
    done: list[int] = []
    outage = 3

    async def store(batch: Sequence[int]) -> None:
        nonlocal outage
        if outage:
            outage -= 1
            raise asyncpg.CannotConnectNowError("the database system is starting up")
        done.extend(batch)

    async def reject(item: int, reason: str) -> None:
        raise AssertionError(f"{item} rejected: {reason}")

    assert await isolating(list(range(10)), store, reject, "test", "storing", FAST) == 0
    assert done == list(range(10))


async def test_cancellation_is_not_a_failure() -> None:
    async def slow(batch: Sequence[int]) -> None:
        await asyncio.sleep(10)

    async def reject(item: int, reason: str) -> None:
        raise AssertionError("a cancelled batch is not rejected")

    task = asyncio.create_task(isolating([1, 2], slow, reject, "test", "storing", FAST))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

