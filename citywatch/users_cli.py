"""`citywatch users add|list`: console accounts (argon2 hashes; passwords never on the command line)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from citywatch.cli_context import Context, pass_context
from citywatch.console.auth import ROLES, hash_password


def register(main: click.Group) -> None:
    @main.group()
    def users() -> None:
        """Console users and their roles (viewer, operator, rule_editor, admin)."""

    @users.command("add")
    @click.argument("name")
    @click.option("--role", type=click.Choice(ROLES), required=True)
    @click.option("--password-stdin", is_flag=True, help="read the password from standard input")
    @pass_context
    def users_add(ctx: Context, name: str, role: str, password_stdin: bool) -> None:
        """Create a user, or set an existing one's role and password."""
        import asyncpg

        from storage.migrate import migrate
        from storage.people import audit, upsert_user

        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = click.prompt("password", hide_input=True, confirmation_prompt=True)
        try:
            hashed = hash_password(password)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc

        async def run() -> None:
            connection = await asyncpg.connect(ctx.settings.storage.dsn)
            try:
                await migrate(connection)
                await upsert_user(connection, name, hashed, role)
                await audit(connection, "cli", "user set", name, {"role": role})
            finally:
                await connection.close()

        asyncio.run(run())
        click.echo(f"{name} is a {role}", err=True)

    @users.command("list")
    @pass_context
    def users_list(ctx: Context) -> None:
        """Every user, with role and whether disabled."""
        import asyncpg

        async def run() -> list[Any]:
            connection = await asyncpg.connect(ctx.settings.storage.dsn)
            try:
                return list(await connection.fetch(
                    "SELECT username, role, disabled, created_at FROM console_users ORDER BY username"))
            finally:
                await connection.close()

        for row in asyncio.run(run()):
            state = "disabled" if row["disabled"] else "active"
            click.echo("\t".join((row["username"], row["role"], state)))
