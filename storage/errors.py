"""Which database errors heal by themselves and which belong to the rows that caused them.

The store agent's failure policy (citywatch.agents.policy) needs that split: a database that
is down, restarting, out of connections or mid-failover heals, so the batch is retried and
nothing is dead-lettered; a value the database can never hold (out of range for its column,
a NUL in text, a broken constraint) will fail the same way forever, so only the message
carrying it is dead-lettered. The split follows PostgreSQL's SQLSTATE classes.
"""

from __future__ import annotations

from typing import Literal

import asyncpg

Verdict = Literal["transient", "permanent"]

PERMANENT_CLASSES = frozenset({
    "22",  # data exception: out of range, invalid text, NUL, bad time
    "23",  # integrity constraint violation (a unique violation is the writer's own business)
    "XX",  # internal error raised on a value (e.g. a time no chunk can hold)
})
"""SQLSTATE classes that say 'this data', not 'this moment'. Everything else the server says
(connection exceptions 08, rollbacks 40, resources 53, operator intervention 57, system
errors 58, and also 42: a schema or privilege the operator has to fix) heals without the
message changing, so retrying, not dead-lettering, is right."""


def database_verdict(exc: BaseException) -> Verdict | None:
    """transient, permanent, or None where `exc` is not the database's to judge."""
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = str(getattr(exc, "sqlstate", "") or "")
        return "permanent" if sqlstate[:2] in PERMANENT_CLASSES else "transient"
    if isinstance(exc, asyncpg.InterfaceError):
        # the client-side DataError (a value that cannot be encoded for its column) is also a
        # ValueError; every other interface error is about the connection
        return "permanent" if isinstance(exc, ValueError) else "transient"
    return None
