"""`citywatch notify oncall|ack|preview`: who is on call, take an alert, see a message."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import click

from citywatch.cli_context import Context, parse_time, pass_context
from notifier.channel_registry import CHANNEL_KINDS
from rules.loader import parse_rules
from rules.yaml_source import YamlFileError


def register(main: click.Group) -> None:
    @main.group()
    def notify() -> None:
        """On call, acknowledgements and message previews."""

    @notify.command("oncall")
    @click.option("--at", "at", callback=parse_time, default=None, help="ISO time (default: now)")
    @pass_context
    def notify_oncall(ctx: Context, at: datetime | None) -> None:
        """Who is on call in each schedule at a time."""
        at = at or datetime.now(UTC)
        schedules = ctx.settings.directory.schedules
        if not schedules:
            raise click.ClickException("no on-call schedules under notify.schedules")
        for name, schedule in sorted(schedules.items()):
            click.echo(f"{name}: {schedule.on_call(at) or 'nobody'}")

    @notify.command("ack")
    @click.argument("alert_id", type=click.UUID)
    @click.option("--by", required=True, help="who takes it")
    @click.option("--note", default="")
    @pass_context
    def notify_ack(ctx: Context, alert_id: UUID, by: str, note: str) -> None:
        """Acknowledge an alert: its escalation stops."""
        import asyncpg

        from citywatch.acks import acknowledge
        from citywatch.publisher import KafkaPublisher
        from citywatch.topics import Topics

        settings = ctx.settings

        async def run() -> Any:
            connection = await asyncpg.connect(settings.storage.dsn)
            broker = settings.broker
            publisher = KafkaPublisher(broker.bootstrap_servers, Topics(broker.topic_prefix),
                                       broker.max_message_bytes)
            await publisher.start()
            try:
                return await acknowledge(connection, publisher, alert_id, by, "cli", note)
            finally:
                await publisher.stop()
                await connection.close()

        if asyncio.run(run()) is None:
            raise click.ClickException(f"no alert {alert_id} in the database")
        click.echo(f"acknowledged {alert_id} as {by}", err=True)

    @notify.command("preview")
    @click.argument("rule_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
    @click.option("--channel", type=click.Choice(sorted(CHANNEL_KINDS)), default="sms",
                  show_default=True)
    @click.option("--state", type=click.Choice(["fired", "resolved"]), default="fired", show_default=True)
    @click.option("--value", "values", multiple=True, help="an evidence value, KEY=VALUE (repeatable)")
    @pass_context
    def notify_preview(
        ctx: Context, rule_file: Path, channel: str, state: str, values: tuple[str, ...]
    ) -> None:
        """Render each rule's message for a made-up alert, as recipients would see it."""
        from notifier.templates import render
        from rules.events import Alert, Evidence

        try:
            rules = parse_rules(rule_file.read_text(encoding="utf-8"), str(rule_file))
        except YamlFileError as exc:
            for error in exc.errors:
                click.echo(str(error), err=True)
            sys.exit(1)
        evidence = dict(value.split("=", 1) for value in values if "=" in value)
        now = datetime.now(UTC)
        kind = CHANNEL_KINDS[channel]
        configured = ctx.settings.channels.of(kind)
        for rule in rules:
            alert = Alert.model_validate({
                "source_id": "cam-example", "time": now, "alert_id": uuid4(), "rule_id": rule.id,
                "title": rule.title, "severity": rule.severity, "state": state, "group_key": "cam-example",
                "started_at": now, "resolved_at": now if state == "resolved" else None, "labels": rule.labels,
                "evidence": Evidence(values=evidence), "route": rule.route, "notify": rule.notify,
                "templates": rule.templates})
            message = render(kind.form(configured), alert)
            click.echo(f"--- {rule.id} ({channel}, {state})")
            click.echo(kind.preview(message, configured))
