"""`citywatch rules publish|delete|silence|unsilence|history`: change the live rules on the
`rules` topic (every worker applies it within a second) and read their history."""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from citywatch.cli_context import Context, pass_context
from citywatch.rule_checks import against
from citywatch.settings import Settings
from rules.duration import parse_duration
from rules.library import FolderSeed, RuleFileVersion, RulesTopicMessage, SilenceChange
from rules.loader import RuleCheck, parse_rules
from rules.silences import Silence
from rules.yaml_source import SourceError, YamlFileError


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _send(settings: Settings, *messages: RulesTopicMessage) -> None:
    from citywatch.publisher import KafkaPublisher
    from citywatch.rulebook import publish_rules_message
    from citywatch.topics import Topics

    async def send() -> None:
        publisher = KafkaPublisher(settings.broker.bootstrap_servers, Topics(settings.broker.topic_prefix),
                                   settings.broker.max_message_bytes)
        await publisher.start()
        try:
            for message in messages:
                await publish_rules_message(publisher, message)
        finally:
            await publisher.stop()

    asyncio.run(send())


def _refused(files: dict[str, str], check: RuleCheck) -> list[SourceError]:
    """What the settings refuse in rule files that are valid on their own."""
    errors: list[SourceError] = []
    for name, text in sorted(files.items()):
        try:
            parse_rules(text, name, check)
        except YamlFileError as exc:
            errors.extend(exc.errors)
    return errors


def register(rules: click.Group) -> None:
    @rules.command("publish")
    @click.argument("files", nargs=-1, required=True,
                    type=click.Path(path_type=Path, exists=True, dir_okay=False))
    @click.option("--author", default=_user, show_default="the current user")
    @click.option("--comment", default="", help="why (kept with the version)")
    @pass_context
    def rules_publish(ctx: Context, files: tuple[Path, ...], author: str, comment: str) -> None:
        """Validate FILES (as `rules check` does, against these settings) and make them live in
        every worker (by file name); nothing is sent if any file is invalid."""
        now = datetime.now(UTC)
        versions, failed = [], False
        check = against(ctx.settings)
        for path in files:
            text = path.read_text(encoding="utf-8")
            try:
                parse_rules(text, str(path), check)
            except YamlFileError as exc:
                failed = True
                for error in exc.errors:
                    click.echo(str(error), err=True)
                continue
            versions.append(RuleFileVersion(name=path.name, content=text, author=author, published_at=now,
                                            comment=comment))
        if failed:
            click.echo("nothing published", err=True)
            sys.exit(1)
        _send(ctx.settings, *versions)
        click.echo(f"published {', '.join(v.name for v in versions)}", err=True)

    @rules.command("sync")
    @click.option("--from-folder", "from_folder", is_flag=True, required=True,
                  help="make the configured rules.paths folder what every worker runs")
    @click.option("--prune", is_flag=True, help="also delete live files the folder does not have")
    @click.option("--author", default=_user, show_default="the current user")
    @pass_context
    def rules_sync(ctx: Context, from_folder: bool, prune: bool, author: str) -> None:
        """GitOps: publish every folder file whose content differs from the live version,
        overriding versions published from the CLI or the console (a worker's own folder
        publishing never does; see docs/rules.md). Nothing is sent if a file is invalid."""
        import asyncpg

        from rules.reload import RuleDirectoryWatcher
        from storage.rules_archive import live_rule_files

        watcher = RuleDirectoryWatcher(ctx.settings.rules.paths)
        result = watcher.poll()
        if result is not None and result.errors:
            for error in result.errors:
                click.echo(str(error), err=True)
            click.echo("nothing published", err=True)
            sys.exit(1)
        accepted = result.accepted if result is not None else {}
        folder = {name: text for name, text in accepted.items() if text is not None}
        refused = _refused(folder, against(ctx.settings))
        if refused:
            for error in refused:
                click.echo(str(error), err=True)
            click.echo("nothing published", err=True)
            sys.exit(1)

        async def live() -> dict[str, str]:
            connection = await asyncpg.connect(ctx.settings.storage.dsn)
            try:
                return await live_rule_files(connection)
            finally:
                await connection.close()

        running = asyncio.run(live())
        now = datetime.now(UTC)
        messages: list[RulesTopicMessage] = []
        changes: dict[str, str | None] = {
            name: text for name, text in folder.items() if running.get(name) != text}
        if prune:
            changes.update({name: None for name in running if name not in folder})
        for name, text in sorted(changes.items(), key=lambda item: item[0]):
            digest = hashlib.sha256(text.encode()).hexdigest() if text is not None else ""
            messages.append(RuleFileVersion(name=name, content=text, author=author, published_at=now,
                                            origin="directory", comment="rules sync --from-folder"))
            messages.append(FolderSeed(name=name, sha256=digest, at=now))
        if messages:
            _send(ctx.settings, *messages)
        click.echo(f"synced {len(changes)} files from the folder"
                   + (f": {', '.join(sorted(changes))}" if changes else ""), err=True)

    @rules.command("delete")
    @click.argument("name")
    @click.option("--author", default=_user, show_default="the current user")
    @click.option("--comment", default="")
    @pass_context
    def rules_delete(ctx: Context, name: str, author: str, comment: str) -> None:
        """Remove the rule file NAME (e.g. crowd.yaml) from every worker."""
        _send(ctx.settings, RuleFileVersion(name=name, content=None, author=author,
                                            published_at=datetime.now(UTC), comment=comment))
        click.echo(f"deleted {name}", err=True)

    @rules.command("silence")
    @click.argument("rule_id")
    @click.option("--key", "group_key", default=None, help="only this group key (e.g. a camera id)")
    @click.option("--for", "duration", required=True, help="how long, e.g. 2h")
    @click.option("--reason", required=True)
    @click.option("--by", "created_by", default=_user, show_default="the current user")
    @pass_context
    def rules_silence(ctx: Context, rule_id: str, group_key: str | None, duration: str, reason: str,
                      created_by: str) -> None:
        """Mute RULE_ID (or * for all) for a while: alerts still fire and are stored, nobody is
        notified. Prints the silence id."""
        try:
            seconds = parse_duration(duration)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--for") from exc
        now = datetime.now(UTC)
        silence = Silence(id=f"s-{uuid.uuid4().hex[:12]}", rule_id=rule_id, group_key=group_key,
                          until=now + timedelta(seconds=seconds), reason=reason, created_by=created_by)
        _send(ctx.settings, SilenceChange(id=silence.id, silence=silence, by=created_by, at=now))
        click.echo(silence.id)

    @rules.command("unsilence")
    @click.argument("silence_id")
    @click.option("--by", default=_user, show_default="the current user")
    @pass_context
    def rules_unsilence(ctx: Context, silence_id: str, by: str) -> None:
        """Lift a silence before it expires."""
        _send(ctx.settings, SilenceChange(id=silence_id, silence=None, by=by, at=datetime.now(UTC)))
        click.echo(f"lifted {silence_id}", err=True)

    @rules.command("history")
    @click.argument("name", required=False)
    @click.option("--limit", default=20, show_default=True)
    @click.option("--diff/--no-diff", default=True, show_default=True)
    @pass_context
    def rules_history(ctx: Context, name: str | None, limit: int, diff: bool) -> None:
        """Versions of rule files (all, or NAME), newest first: who, when, what changed."""
        import asyncpg

        from storage.rules_archive import rule_history

        async def fetch() -> list[dict[str, Any]]:
            connection = await asyncpg.connect(ctx.settings.storage.dsn)
            try:
                return await rule_history(connection, name, limit)
            finally:
                await connection.close()

        for row in asyncio.run(fetch()):
            what = "deleted" if row["deleted"] else f"v{row['version']}"
            if not row["accepted"]:
                what += " REFUSED"
            comment = f" ({row['comment']})" if row["comment"] else ""
            click.echo(f"{row['published_at'].isoformat()} {row['name']} {what} by {row['author']}{comment}")
            if row["errors"]:
                click.echo(row["errors"])
            if diff and row["diff"]:
                click.echo(row["diff"].rstrip())
