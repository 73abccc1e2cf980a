"""TimescaleDB's community features against the real server. Here it is the Apache edition,
so each statement must get as far as the license check and fail there, and nowhere sooner:
a misspelt function, argument, table or column fails first with its own error. On a
community-licensed server the same test runs each statement for real (rolled back)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from storage.community import (
    COMMUNITY_LICENSE,
    COMPRESS_AFTER,
    ROLLUPS,
    Statement,
    compression_statements,
    ensure_community_features,
    policy_interval,
    retention_statements,
    rollup_statements,
    rollups_available,
    server_license,
)
from storage.retention import DEFAULT_RETENTION

pytestmark = pytest.mark.integration


class RolledBack(Exception):
    pass


def statement_groups() -> list[list[Statement]]:
    """The statements as ensure_community_features runs them together."""
    groups = [compression_statements(table, after) for table, after in COMPRESS_AFTER.items()]
    groups += [rollup_statements(name) for name in ROLLUPS]
    groups += [retention_statements(table, keep) for table, keep in DEFAULT_RETENTION.items()]
    return groups


async def test_every_community_statement_is_valid_up_to_the_license(pg_pool: asyncpg.Pool) -> None:
    groups = statement_groups()
    assert sum(map(len, groups)) == 2 * len(COMPRESS_AFTER) + 3 * len(ROLLUPS) + 2 * len(DEFAULT_RETENTION)
    async with pg_pool.acquire() as connection:
        if await server_license(connection) == COMMUNITY_LICENSE:
            for group in groups:  # for real, rolled back (the fill cannot run in a transaction)
                with pytest.raises(RolledBack):
                    async with connection.transaction():
                        for statement in group:
                            if statement.in_transaction:
                                await connection.execute(statement.sql, *statement.args)
                        raise RolledBack
            return
        for statement in (statement for group in groups for statement in group):
            name = statement.args[0] if statement.args and statement.args[0] in ROLLUPS else None
            if not statement.in_transaction:  # a procedure: alone, with a plain view standing in
                assert name is not None
                await connection.execute(f"CREATE VIEW {name} AS {ROLLUPS[name]}")
                try:
                    with pytest.raises(asyncpg.FeatureNotSupportedError, match="license"):
                        await connection.execute(statement.sql, *statement.args)
                finally:
                    await connection.execute(f"DROP VIEW {name}")
                continue
            with pytest.raises(asyncpg.FeatureNotSupportedError, match="license"):
                async with connection.transaction():
                    if name is not None:  # a policy on a rollup: a plain view stands in for it
                        await connection.execute(f"CREATE VIEW {name} AS {ROLLUPS[name]}")
                    await connection.execute(statement.sql, *statement.args)


async def test_a_misspelt_statement_fails_before_the_license_check(pg_pool: asyncpg.Pool) -> None:
    """What makes the test above worth having: the server checks names before the license."""
    async with pg_pool.acquire() as connection:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await connection.execute("SELECT add_compression_policy('readings'::regclass,"
                                     " compress_afterr => INTERVAL '7 days')")
        broken = ROLLUPS["readings_hourly"].replace("aqi_count", "aqi_count, count(aqii)")
        with pytest.raises(asyncpg.UndefinedColumnError):
            await connection.execute(f"CREATE MATERIALIZED VIEW misspelt WITH (timescaledb.continuous)"
                                     f" AS {broken} WITH NO DATA")


async def test_the_policies_are_read_from_the_jobs_view(pg_pool: asyncpg.Pool) -> None:
    async with pg_pool.acquire() as connection:
        community = await server_license(connection) == COMMUNITY_LICENSE
        for table in COMPRESS_AFTER:
            found = await policy_interval(connection, "policy_compression", table, "compress_after")
            assert (found is None) != community or found == COMPRESS_AFTER[table]
        job = await policy_interval(connection, "policy_job_stat_history_retention", "none", "drop_after")
        assert job is None  # a job of the database's own, on no hypertable


async def test_on_the_apache_edition_nothing_is_set_up(pg_pool: asyncpg.Pool) -> None:
    async with pg_pool.acquire() as connection:
        if await server_license(connection) == COMMUNITY_LICENSE:
            assert await ensure_community_features(connection)
            assert await rollups_available(connection)
            assert await connection.fetchval("SELECT count(*) FROM rollups_ready") == len(ROLLUPS)
            assert await policy_interval(connection, "policy_compression", "readings",
                                         "compress_after") == timedelta(days=7)
            return
        assert await ensure_community_features(connection) is False
        assert await rollups_available(connection) is False
        assert await connection.fetchval("SELECT count(*) FROM rollups_ready") == 0
        assert await connection.fetchval("SELECT count(*) FROM timescaledb_information.jobs"
                                         " WHERE hypertable_name = 'readings'") == 0
