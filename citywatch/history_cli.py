"""`citywatch history events|aggregate`: the analysts' queries from a shell, with the same
filters as the HTTP API, printed as a table or exported as CSV, JSON, GeoJSON or Parquet."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from citywatch.cli_context import Context, parse_time, pass_context
from citywatch.history_filters import event_query, problems
from storage.aggregates import BUCKETS, AggregateQuery, aggregate
from storage.community import rollups_available
from storage.export import export
from storage.search import COLUMNS, QueryError, search


def _fetch(dsn: str, run: Any) -> Any:
    import asyncpg

    async def go() -> Any:
        connection = await asyncpg.connect(dsn)
        try:
            return await run(connection)
        finally:
            await connection.close()

    return asyncio.run(go())


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    click.echo("\t".join(columns))
    for row in rows:
        click.echo("\t".join("" if row.get(c) is None else str(row.get(c)) for c in columns))


def _invalid(exc: ValidationError) -> click.ClickException:
    return click.ClickException("; ".join(problems(exc)))


def register(main: click.Group) -> None:
    @main.group()
    def history() -> None:
        """Historical events and aggregates from TimescaleDB."""

    @history.command("events")
    @click.argument("kind", type=click.Choice(sorted(COLUMNS)))
    @click.option("--from", "start", required=True, callback=parse_time)
    @click.option("--to", "end", required=True, callback=parse_time)
    @click.option("--source", multiple=True)
    @click.option("--class", "classes", multiple=True, help="detections: object class")
    @click.option("--severity", multiple=True)
    @click.option("--rule", multiple=True)
    @click.option("--label", multiple=True, help="alerts: KEY=VALUE")
    @click.option("--near", default=None, help="LAT,LON,METRES")
    @click.option("--bbox", default=None, help="MIN_LAT,MIN_LON,MAX_LAT,MAX_LON")
    @click.option("--text", default=None, help="alerts: words in the title")
    @click.option("--limit", default=100, show_default=True)
    @click.option("--after", default=None, help="the cursor printed after the previous page")
    @click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "geojson", "parquet"]),
                  default="table", show_default=True)
    @click.option("--output", type=click.Path(path_type=Path), default=None,
                  help="write here (parquet needs it)")
    @pass_context
    def history_events(ctx: Context, kind: str, start: datetime, end: datetime, source: tuple[str, ...],
                       classes: tuple[str, ...], severity: tuple[str, ...], rule: tuple[str, ...],
                       label: tuple[str, ...], near: str | None, bbox: str | None, text: str | None,
                       limit: int, after: str | None, fmt: str, output: Path | None) -> None:
        """Events of KIND in a time range, newest first, with filters."""
        try:
            query = event_query(kind, start, end, sources=source, classes=classes, severities=severity,
                                rules=rule, labels=label, label_separator="=", bbox=bbox, near=near,
                                text=text, limit=limit, after=after)
        except ValidationError as exc:
            raise _invalid(exc) from exc
        except ValueError as exc:
            raise click.BadParameter(
                f"--label KEY=VALUE, --near LAT,LON,METRES, --bbox 4 numbers ({exc})") from exc
        try:
            page = _fetch(ctx.settings.storage.dsn, lambda db: search(db, query))
        except QueryError as exc:
            raise click.ClickException(str(exc)) from exc
        columns = list(COLUMNS[kind])
        if fmt == "table":
            _table(page.rows, columns)
        else:
            body = export(page.rows, columns, fmt)  # type: ignore[arg-type]
            if output is not None:
                output.write_bytes(body)
            elif fmt == "parquet":
                raise click.UsageError("--format parquet needs --output FILE")
            else:
                sys.stdout.write(body.decode() + "\n")
        if page.next_cursor:
            click.echo(f"more: --after {page.next_cursor}", err=True)

    @history.command("aggregate")
    @click.argument("name", type=click.Choice(["detections_per_class", "aqi_series", "alerts_per_rule",
                                               "time_to_ack"]))
    @click.option("--from", "start", required=True, callback=parse_time)
    @click.option("--to", "end", required=True, callback=parse_time)
    @click.option("--bucket", type=click.Choice(sorted(BUCKETS)), default="1h", show_default=True)
    @click.option("--source", multiple=True)
    @click.option("--class", "classes", multiple=True)
    @click.option("--rule", multiple=True)
    @click.option("--field", default="aqi", show_default=True, help="aqi_series: aqi or a pollutant")
    @pass_context
    def history_aggregate(ctx: Context, name: str, start: datetime, end: datetime, bucket: str,
                          source: tuple[str, ...], classes: tuple[str, ...], rule: tuple[str, ...],
                          field: str) -> None:
        """A time-bucketed series per key; empty buckets print empty (gaps are gaps)."""
        try:
            query = AggregateQuery.model_validate({
                "name": name, "start": start, "end": end, "bucket": bucket, "sources": list(source),
                "classes": list(classes), "rules": list(rule), "field": field})
        except ValidationError as exc:
            raise _invalid(exc) from exc
        async def series(db: Any) -> list[dict[str, Any]]:
            return await aggregate(db, query, rollups=await rollups_available(db))

        rows = _fetch(ctx.settings.storage.dsn, series)
        _table(rows, list(rows[0]) if rows else ["bucket"])
