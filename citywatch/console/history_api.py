"""The analysts' HTTP API under /api/: events by filters (keyset pages), aggregates, exports.

Thin: query parameters become the storage's query models (which refuse what does not
apply, with the reason, as a 422), and rows come back as JSON, CSV, Parquet or GeoJSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from citywatch.history_filters import event_query, problems
from storage.aggregates import AggregateName, AggregateQuery, aggregate
from storage.community import rollups_available
from storage.export import MEDIA_TYPES, ExportFormat, export
from storage.search import COLUMNS, EventKind, EventQuery, QueryError, search

Many = Annotated[list[str] | None, Query()]


def _filters(kind: str, start: datetime, end: datetime, source: list[str] | None, cls: list[str] | None,
             severity: list[str] | None, rule: list[str] | None, label: list[str] | None, bbox: str | None,
             near: str | None, text: str | None, limit: int, after: str | None) -> EventQuery:
    try:
        return event_query(kind, start, end, sources=source or [], classes=cls or [],
                           severities=severity or [], rules=rule or [], labels=label or [],
                           label_separator=":", bbox=bbox, near=near, text=text, limit=limit, after=after)
    except ValidationError as exc:
        raise HTTPException(422, problems(exc)) from exc
    except ValueError as exc:
        raise HTTPException(
            422, f"label is key:value, bbox is 4 numbers, near is lat,lon,metres ({exc})") from exc


def history_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["history"])

    @router.get("/events/{kind}")
    async def events(
        request: Request, kind: EventKind, start: datetime, end: datetime, source: Many = None,
        cls: Annotated[list[str] | None, Query(alias="class")] = None, severity: Many = None,
        rule: Many = None, label: Many = None, bbox: str | None = None, near: str | None = None,
        text: str | None = None, limit: int = 100, after: str | None = None,
    ) -> dict[str, Any]:
        """Events of one kind, newest first; pass `next_cursor` as `after` for the next page."""
        query = _filters(kind, start, end, source, cls, severity, rule, label, bbox, near, text, limit, after)
        try:
            page = await search(request.app.state.pool, query)
        except QueryError as exc:
            raise HTTPException(400, str(exc)) from exc
        return {"rows": page.rows, "next_cursor": page.next_cursor}

    @router.get("/export/{kind}.{fmt}")
    async def export_events(
        request: Request, kind: EventKind, fmt: ExportFormat, start: datetime, end: datetime,
        source: Many = None, cls: Annotated[list[str] | None, Query(alias="class")] = None,
        severity: Many = None, rule: Many = None, label: Many = None, bbox: str | None = None,
        near: str | None = None, text: str | None = None, limit: int = 10_000,
    ) -> Response:
        """The same filters as /events, as CSV, Parquet, GeoJSON (located kinds) or JSON."""
        query = _filters(kind, start, end, source, cls, severity, rule, label, bbox, near, text, limit, None)
        page = await search(request.app.state.pool, query)
        body = export(page.rows, COLUMNS[kind], fmt)
        return Response(body, media_type=MEDIA_TYPES[fmt],
                        headers={"Content-Disposition": f'attachment; filename="{kind}.{fmt}"'})

    @router.get("/aggregates/{name}")
    async def aggregates(
        request: Request, name: AggregateName, start: datetime, end: datetime, bucket: str = "1h",
        source: Many = None, cls: Annotated[list[str] | None, Query(alias="class")] = None, rule: Many = None,
        field: str = "aqi",
    ) -> list[dict[str, Any]]:
        """A series per key with a row for every bucket; a bucket without data is null."""
        try:
            query = AggregateQuery.model_validate({
                "name": name, "start": start, "end": end, "bucket": bucket, "sources": source or [],
                "classes": cls or [], "rules": rule or [], "field": field})
        except ValidationError as exc:
            raise HTTPException(422, problems(exc)) from exc
        pool = request.app.state.pool
        return await aggregate(pool, query, rollups=await rollups_available(pool))

    return router
