"""`citywatch users add|list|disable|token`: console accounts (argon2 hashes; passwords never on
the command line) and API tokens (shown once, stored as hashes)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from citywatch.cli_context import Context, pass_context
from citywatch.cli_context import run_db as _run_db
from citywatch.console.auth import ROLES, hash_password
from citywatch.console.tokens import new_token, secret_hash


def register(main: click.Group) -> None:
    @main.group()
    def users() -> None:
        """Console users and their roles (viewer, operator, rule_editor, admin)."""

    register_tokens_and_disabling(users)

    @users.command("add")
    @click.argument("name")
    @click.option("--role", type=click.Choice(ROLES), required=True)
    @click.option("--password-stdin", is_flag=True, help="read the password from standard input")
    @pass_context
    def users_add(ctx: Context, name: str, role: str, password_stdin: bool) -> None:
        """Create a user, or set an existing one's role and password."""
        from storage.people import audit, upsert_user

        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = click.prompt("password", hide_input=True, confirmation_prompt=True)
        try:
            hashed = hash_password(password)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc

        async def run(db: Any) -> None:
            await upsert_user(db, name, hashed, role)
            await audit(db, "cli", "user set", name, {"role": role})

        _run_db(ctx.settings.storage.dsn, run)
        click.echo(f"{name} is a {role}", err=True)

    @users.command("list")
    @pass_context
    def users_list(ctx: Context) -> None:
        """Every user, with role and whether disabled."""
        async def run(db: Any) -> list[Any]:
            return list(await db.fetch(
                "SELECT username, role, disabled, created_at FROM console_users ORDER BY username"))

        for row in _run_db(ctx.settings.storage.dsn, run):
            state = "disabled" if row["disabled"] else "active"
            click.echo("\t".join((row["username"], row["role"], state)))


def _change_audited(ctx: Context, change: Callable[[Any], Awaitable[bool]], action: str, target: str,
                    missing: str) -> None:
    """Make a change that may find nothing to change; audit it when it did, else fail."""
    from storage.people import audit

    async def run(db: Any) -> bool:
        done = await change(db)
        if done:
            await audit(db, "cli", action, target)
        return done

    if not _run_db(ctx.settings.storage.dsn, run):
        raise click.ClickException(missing)


def register_tokens_and_disabling(users: click.Group) -> None:
    @users.command("disable")
    @click.argument("name")
    @pass_context
    def users_disable(ctx: Context, name: str) -> None:
        """Disable a user: their sessions and API tokens stop working at their next request."""
        from storage.people import disable_user

        _change_audited(ctx, lambda db: disable_user(db, name), "user disabled", name, f"no user {name}")
        click.echo(f"{name} is disabled", err=True)

    @users.group("token")
    def token() -> None:
        """API tokens for scripts and notebooks (Authorization: Bearer ...)."""

    @token.command("add")
    @click.argument("name")
    @click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True,
                  help="at most this role (and never more than the user's own)")
    @click.option("--label", default="", help="what the token is for")
    @click.option("--days", type=click.IntRange(1, 3650), default=90, show_default=True,
                  help="valid for this many days")
    @pass_context
    def token_add(ctx: Context, name: str, role: str, label: str, days: int) -> None:
        """Create a token for NAME and print it, once: only a hash of it is kept."""
        from storage.people import add_token, audit, find_user

        made = new_token()
        expires = datetime.now(UTC) + timedelta(days=days)

        async def run(db: Any) -> bool:
            if await find_user(db, name) is None:
                return False
            await add_token(db, made.id, name, secret_hash(made.secret), role, label, expires)
            await audit(db, "cli", "token added", name, {"id": made.id, "role": role, "label": label})
            return True

        if not _run_db(ctx.settings.storage.dsn, run):
            raise click.ClickException(f"no user {name}: add them first (citywatch users add)")
        click.echo(made.text)
        click.echo(f"token {made.id} for {name} ({role}), valid until {expires:%Y-%m-%d}; "
                   "it is not shown again", err=True)

    @token.command("list")
    @pass_context
    def token_list(ctx: Context) -> None:
        """Every token (never the secret): id, user, role, label, expiry, last use, state."""
        from storage.people import list_tokens

        now = datetime.now(UTC)
        for row in _run_db(ctx.settings.storage.dsn, list_tokens):
            expired = row["expires_at"] is not None and row["expires_at"] <= now
            state = "revoked" if row["revoked_at"] else "expired" if expired else "active"
            used = row["last_used_at"].isoformat(timespec="seconds") if row["last_used_at"] else "never"
            expires = row["expires_at"].date().isoformat() if row["expires_at"] else "never"
            fields = (row["id"], row["username"], row["role"], row["label"], expires, used, state)
            click.echo("\t".join(fields))

    @token.command("revoke")
    @click.argument("token_id")
    @pass_context
    def token_revoke(ctx: Context, token_id: str) -> None:
        """Revoke a token by its id (the second part of cwt_<id>_...)."""
        from storage.people import revoke_token

        _change_audited(ctx, lambda db: revoke_token(db, token_id), "token revoked", token_id,
                        f"no active token {token_id}")
        click.echo(f"token {token_id} revoked", err=True)
