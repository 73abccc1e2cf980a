"""The CLI's shared context: the settings file, loaded once and only when a command needs it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from citywatch.settings import Settings, SettingsError, load_settings
from rules.yaml_source import YamlFileError


class Context:
    def __init__(self, config: Path | None) -> None:
        self.config_path = config
        self._settings: Settings | None = None

    @property
    def config(self) -> Path:
        return self.config_path or Path("citywatch.yaml")

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_path)
            except (SettingsError, YamlFileError) as exc:
                raise click.ClickException(f"invalid settings:\n{exc}") from exc
        return self._settings


pass_context = click.make_pass_decorator(Context)


def parse_time(_: click.Context | None, __: click.Parameter | None, value: str | None) -> datetime | None:
    """A click callback: an ISO time (UTC when it has no offset); None stays None."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO time (e.g. 2026-11-24T08:00Z)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_db(dsn: str, action: Callable[[Any], Awaitable[Any]]) -> Any:
    """One connection, the schema brought up to date, then `action` on it."""
    import asyncpg

    from storage.migrate import migrate

    async def run() -> Any:
        connection = await asyncpg.connect(dsn)
        try:
            await migrate(connection)
            return await action(connection)
        finally:
            await connection.close()

    return asyncio.run(run())
