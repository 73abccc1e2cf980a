"""One failure policy for every agent and sink: what went wrong decides what happens next.

Everything that can fail is one of two kinds:

- *transient*: the database, the broker, an SMTP server or the Twilio API is unavailable or
  too slow. It heals without the message changing, so the work is retried with capped,
  jittered backoff while the agent stops consuming (back-pressure: order kept, nothing lost,
  nothing dead-lettered). Such a wait is unbounded on purpose: it ends when the service is back.
- *permanent for this message*: it can never succeed (invalid, unstorable, undecodable, or a
  bug that this input trips). Retrying would wait forever, so the message is dead-lettered
  with its reason and the rest carries on. A batch that fails this way is split in halves
  until exactly the bad messages are rejected and every other one is processed.

An error nobody recognises counts as permanent: the batch split finds the message that trips
it, and a bug that trips every message shows as dead letters, never as a stuck agent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from aiokafka.errors import KafkaError

from citywatch import metrics
from citywatch.deadletter import DeadLetter
from citywatch.publisher import Publisher, publish_dead_letter
from ingest.backoff import Backoff
from ingest.events import EventFormatError
from notifier.channels import DeliveryError
from storage.errors import database_verdict

log = logging.getLogger(__name__)

Verdict = Literal["transient", "permanent"]
T = TypeVar("T")


def classify(exc: BaseException) -> Verdict:
    """Whether `exc` heals by itself (transient) or belongs to the message (permanent)."""
    if isinstance(exc, EventFormatError):
        return "permanent"
    verdict = database_verdict(exc)
    if verdict is not None:
        return verdict
    if isinstance(exc, DeliveryError):
        return "permanent" if exc.permanent else "transient"
    if isinstance(exc, KafkaError):
        return "transient" if exc.retriable else "permanent"
    if isinstance(exc, OSError | TimeoutError | ConnectionError):
        return "transient"
    return "permanent"


def describe(exc: BaseException, what: str) -> str:
    """The reason a dead letter carries: where, which error, its text."""
    return f"{what}: {type(exc).__name__}: {exc}"


class PermanentFailure(Exception):
    """Raised by `until_done` when the error cannot heal; `__cause__` is the original."""


class GaveWay(Exception):
    """Raised by `until_done` when it stops waiting out a transient failure because the worker
    is handing its partitions over (a rebalance) or stopping. The work is left undone and
    unacknowledged: the partition's next owner reads the message again and does it. Faust's
    revoke step waits for every unacknowledged message, so a wait for a database that is
    down would otherwise hold the whole group's rebalance, and SIGTERM, until it is back."""


def never() -> bool:
    return False


GIVE_WAY_POLL_S = 0.25


async def _pause(delay_s: float, give_way: Callable[[], bool], what: str) -> None:
    """Sleep `delay_s`, or less: give way as soon as asked."""
    loop = asyncio.get_running_loop()
    until = loop.time() + delay_s
    while (left := until - loop.time()) > 0:
        if give_way():
            raise GaveWay(f"{what}: given way while waiting to retry")
        await asyncio.sleep(min(left, GIVE_WAY_POLL_S))


@dataclass(frozen=True)
class RetryPolicy:
    initial_s: float = 0.5
    max_s: float = 5.0
    """The longest wait between two tries. A try at a service that is down costs a refused
    connection; a long wait is time the backlog grows after it is back (bench.storage
    measured a catch-up of 1.6-28.7 s at 30 s, under a second at 5 s)."""


async def until_done(
    action: Callable[[], Awaitable[T]], agent: str, what: str, policy: RetryPolicy = RetryPolicy(),
    give_way: Callable[[], bool] = never,
) -> T:
    """Run `action` until it succeeds, waiting out transient failures; a permanent one raises
    PermanentFailure at once (never retried). While waiting, `give_way()` turning true
    raises GaveWay (for work whose messages are acknowledged by hand: see GaveWay)."""
    backoff = Backoff(policy.initial_s, policy.max_s)
    while True:
        try:
            return await action()
        except Exception as exc:
            if classify(exc) == "permanent":
                raise PermanentFailure(describe(exc, what)) from exc
            if give_way():
                raise GaveWay(describe(exc, what)) from exc
            delay = backoff.next_delay()
            metrics.TRANSIENT_FAILURES.labels(agent).inc()
            log.error("%s: %s failed (%s: %s); retrying in %.1f s", agent, what, type(exc).__name__, exc,
                      delay)
            await _pause(delay, give_way, what)


async def isolating(
    items: Sequence[T],
    action: Callable[[Sequence[T]], Awaitable[None]],
    reject: Callable[[T, str], Awaitable[None]],
    agent: str,
    what: str,
    policy: RetryPolicy = RetryPolicy(),
    give_way: Callable[[], bool] = never,
) -> int:
    """Process `items` with `action`, a batch at a time, under the policy: transient failures
    are waited out, a permanent failure splits the batch until each item that still fails
    alone is rejected with its reason. Items keep their order. Returns how many were rejected.
    A wait that gives way (GaveWay) ends the whole call: what is left is for the next owner.

    `action` must be idempotent: a half that is retried may redo what it had done before it
    failed (the sinks deduplicate on event ids)."""
    pending: list[list[T]] = [list(items)] if items else []
    rejected = 0
    while pending:
        part = pending.pop()

        async def attempt(part: list[T] = part) -> None:
            await action(part)

        try:
            await until_done(attempt, agent, what, policy, give_way)
        except PermanentFailure as failure:
            if len(part) == 1:
                rejected += 1
                await reject(part[0], str(failure))
                continue
            middle = len(part) // 2
            log.warning("%s: %s; splitting the batch of %d to find the message", agent, failure, len(part))
            pending += [part[middle:], part[:middle]]  # the first half is processed first
    return rejected


DEAD_LETTER_PREVIEW_BYTES = 64 * 1024
"""A dead letter the broker refuses whole (too large with its headers) is kept with this much
of the original, and says how long the original was."""


async def keep_dead_letter(publisher: Publisher, letter: DeadLetter, agent: str) -> bool:
    """Publish a dead letter under the policy: a broker that is away is waited for; one that
    refuses it whole gets its first 64 KiB instead. False when even that is refused (it is
    logged: a dead letter of a dead letter would loop)."""
    try:
        await until_done(lambda: publish_dead_letter(publisher, letter), agent, "dead-lettering")
        return True
    except PermanentFailure as failure:
        size = len(letter.raw)
        log.error("%s: the dead letter was refused whole (%s); keeping its first %d of %d bytes",
                  agent, failure, DEAD_LETTER_PREVIEW_BYTES, size)
    cut = dataclasses.replace(letter, reason=f"{letter.reason} [truncated from {size} bytes]",
                              raw=letter.raw[:DEAD_LETTER_PREVIEW_BYTES])
    try:
        await until_done(lambda: publish_dead_letter(publisher, cut), agent, "dead-lettering")
        return True
    except PermanentFailure as failure:
        log.error("%s: the dead letter could not be kept at all (%s): %s", agent, failure, letter.reason)
        return False
