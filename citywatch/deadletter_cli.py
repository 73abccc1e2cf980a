"""`citywatch deadletter list|show|requeue`: what was refused, why, and replaying it once fixed.

Requeue publishes the stored bytes back to the topic they came from (keyed by their source),
so the consumer that refused them tries again; the row records who requeued it and when. A
message refused by a source before it reached a topic (an HTTP or MQTT body, a CSV row) has
no topic to go back to: `show --raw` gives its bytes to resend to the receiver.
"""

from __future__ import annotations

import json
import sys
import uuid
from typing import Any

import click

from citywatch.cli_context import Context, pass_context, run_db
from citywatch.topics import Topics


def _letter_id(
    _: click.Context | None, __: click.Parameter | None, values: tuple[str, ...]
) -> list[uuid.UUID]:
    try:
        return [uuid.UUID(value) for value in values]
    except ValueError as exc:
        raise click.BadParameter(f"not a dead letter id: {exc}") from exc


def register(main: click.Group) -> None:
    @main.group()
    def deadletter() -> None:
        """Dead letters: messages a consumer or source refused, with the reason."""

    @deadletter.command("list")
    @click.option("--origin", default=None, help="only from this topic (e.g. citywatch.readings)")
    @click.option("--consumer", default=None, help="only refused by this agent or source")
    @click.option("--pending", is_flag=True, help="only those not requeued yet")
    @click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
    @click.option("--json", "as_json", is_flag=True)
    @pass_context
    def deadletter_list(ctx: Context, origin: str | None, consumer: str | None, pending: bool, limit: int,
                        as_json: bool) -> None:
        """The newest dead letters first: time, origin, consumer, reason, payload preview."""
        from storage.dead_letters import list_dead_letters

        rows = run_db(ctx.settings.storage.dsn,
                      lambda db: list_dead_letters(db, limit, origin, consumer, pending))
        if as_json:
            click.echo(json.dumps(rows, default=str, indent=2))
            return
        for row in rows:
            where = f"{row['origin_topic']}"
            if row["origin_offset"] is not None:
                where += f"[{row['origin_partition']}]@{row['origin_offset']}"
            requeued = f" (requeued by {row['requeued_by']})" if row["requeued_at"] else ""
            click.echo(f"{row['id']} {row['rejected_at'].isoformat()} {where} {row['consumer']}{requeued}\n"
                       f"    {row['reason']}\n    {row['payload_size']} bytes: {row['preview']}")
        click.echo(f"{len(rows)} dead letters", err=True)

    @deadletter.command("show")
    @click.argument("letter_id", nargs=1, callback=lambda c, p, v: _letter_id(c, p, (v,))[0])
    @click.option("--raw", is_flag=True, help="write the payload's bytes to standard output")
    @pass_context
    def deadletter_show(ctx: Context, letter_id: uuid.UUID, raw: bool) -> None:
        """One dead letter in full."""
        from storage.dead_letters import get_dead_letter, preview

        row = run_db(ctx.settings.storage.dsn, lambda db: get_dead_letter(db, letter_id))
        if row is None:
            raise click.ClickException(f"no dead letter {letter_id}")
        payload = bytes(row.pop("payload"))
        if raw:
            sys.stdout.buffer.write(payload)
            return
        click.echo(json.dumps({**row, "preview": preview(payload, 2000)}, default=str, indent=2))

    @deadletter.command("requeue")
    @click.argument("letter_ids", nargs=-1, required=True, callback=_letter_id)
    @click.option("--by", default="cli", show_default=True, help="who requeues (recorded)")
    @pass_context
    def deadletter_requeue(ctx: Context, letter_ids: list[uuid.UUID], by: str) -> None:
        """Publish dead letters back to the topic they came from, once their cause is fixed."""
        from citywatch.publisher import KafkaPublisher
        from citywatch.requeue import requeue, requeue_problem
        from storage.dead_letters import get_dead_letter

        settings = ctx.settings
        topics = Topics(settings.broker.topic_prefix)

        async def check(db: Any) -> list[str]:
            found = [(i, requeue_problem(await get_dead_letter(db, i), topics)) for i in letter_ids]
            return [f"{i}: {problem}" for i, problem in found if problem is not None]

        problems = run_db(settings.storage.dsn, check)
        if problems:  # all or nothing: none is requeued while another cannot be
            raise click.ClickException("\n".join(problems))

        async def publish(db: Any) -> None:
            broker = settings.broker
            publisher = KafkaPublisher(broker.bootstrap_servers, topics, broker.max_message_bytes)
            await publisher.start()
            try:
                for letter_id in letter_ids:
                    topic = await requeue(db, publisher, topics, letter_id, by)
                    click.echo(f"{letter_id} -> {topic}")
            finally:
                await publisher.stop()

        run_db(settings.storage.dsn, publish)
        click.echo(f"requeued {len(letter_ids)}", err=True)
