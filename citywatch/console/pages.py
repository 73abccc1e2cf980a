"""The console's pages besides the feed: alert detail, rules, history, sources, on call.
Each needs a signed-in user; what a page lets one do follows the role."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from citywatch.catalog import source_catalog
from citywatch.console.auth import User, csrf_token, session_user
from citywatch.settings import Settings
from storage.search import fetch_decoded
from storage.snapshots import PgSnapshots, event_id_of


async def _decoded(pool: Any, text: str, *args: Any) -> list[dict[str, Any]]:
    """Rows with their json and jsonb columns as objects (storage.search.fetch_decoded): asyncpg
    gives their text, and the sources page read the health's fields off a string (every camera
    showed offline)."""
    async with pool.acquire() as connection:
        return await fetch_decoded(connection, text, list(args))

def _evidence_file(folder: Path, path: str) -> Path | None:
    """The file, when it is a JPEG inside the snapshot folder (no path tricks)."""
    base, resolved = folder.resolve(), Path(path).resolve()
    if resolved.is_relative_to(base) and resolved.suffix == ".jpg" and resolved.is_file():
        return resolved
    return None


def _page(templates: Jinja2Templates, request: Request, name: str, user: User, **context: Any) -> Response:
    return templates.TemplateResponse(request, name, {"user": user, "csrf": csrf_token(request), **context})


def pages_router(settings: Settings, templates: Jinja2Templates) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    catalog = source_catalog(settings)
    places = {source: info.position for source, info in catalog.items() if info.position is not None}
    sensor_ids = [source for source, info in catalog.items() if info.kind == "sensor"]

    @router.get("/rules", response_class=HTMLResponse)
    async def rules(request: Request) -> Response:
        user = await session_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        return _page(templates, request, "rules.html", user, can_edit=user.can("rule_editor"))

    @router.get("/history", response_class=HTMLResponse)
    async def history(request: Request) -> Response:
        user = await session_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        end = datetime.now(UTC).replace(microsecond=0)
        return _page(templates, request, "history.html", user, start=(end - timedelta(days=1)).isoformat(),
                     end=end.isoformat())

    @router.get("/oncall", response_class=HTMLResponse)
    async def oncall(request: Request) -> Response:
        user = await session_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        now = datetime.now(UTC)
        directory = settings.directory
        rows = []
        for name, schedule in sorted(directory.schedules.items()):
            change = schedule.next_change(now)
            rows.append({"schedule": name, "now": schedule.on_call(now), "next": schedule.on_call(change),
                         "from": change})
        teams = {name: team.members for name, team in sorted(directory.teams.items())}
        return _page(templates, request, "oncall.html", user, schedules=rows, teams=teams)

    @router.get("/sources", response_class=HTMLResponse)
    async def sources(request: Request) -> Response:
        user = await session_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        pool = request.app.state.pool
        health = {r["source_id"]: r for r in await _decoded(
            pool, "SELECT DISTINCT ON (source_id) source_id, time, body FROM source_events"
            " WHERE kind = 'health' ORDER BY source_id, time DESC")}
        snapshots = {r["source_id"]: r["snapshot"] for r in await pool.fetch(
            "SELECT DISTINCT ON (source_id) source_id, snapshot FROM detections"
            " WHERE snapshot IS NOT NULL AND time > now() - interval '1 day' ORDER BY source_id, time DESC")}
        cameras = [{"id": c.id, "kind": c.kind, "models": [s.model for s in settings.steps_for(c.id)],
                    "health": health.get(c.id), "snapshot": snapshots.get(c.id)}
                   for c in settings.sources.cameras]
        sensors = [{"id": source, "health": health.get(source)} for source in sensor_ids]
        return _page(templates, request, "sources.html", user, cameras=cameras, sensors=sensors)

    @router.get("/alerts/{alert_id}", response_class=HTMLResponse)
    async def alert_detail(alert_id: UUID, request: Request) -> Response:
        user = await session_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        pool = request.app.state.pool
        transitions = await _decoded(pool, "SELECT * FROM alerts WHERE alert_id = $1 ORDER BY time", alert_id)
        if not transitions:
            raise HTTPException(404, f"no alert {alert_id}")
        timeline = [dict(r) for r in await pool.fetch(
            "SELECT time, change, detail FROM alert_history WHERE alert_id = $1 UNION ALL"
            " SELECT time, 'notified ' || recipient || ' by ' || channel,"
            " status || CASE WHEN error IS NULL THEN '' ELSE ': ' || error END"
            " FROM notifications WHERE alert_id = $1 ORDER BY 1", alert_id)]
        first = transitions[0]
        place = places.get(first["source_id"])
        evidence = transitions[-1]["evidence"]
        if isinstance(evidence, dict) and not evidence.get("snapshot"):  # the nearest picture in its window
            interval = max(settings.pipelines.snapshot_min_interval_s, 1.0)
            since = first["started_at"] - timedelta(seconds=interval)
            evidence["snapshot"] = await PgSnapshots.on(pool).nearest(first["source_id"], since,
                                                                      transitions[-1]["time"])
        return _page(templates, request, "alert.html", user, alert=transitions[-1], last=transitions[-1],
                     timeline=timeline, place=place, places=places, can_act=user.can("operator"))

    @router.get("/snapshot")
    async def snapshot(path: str, request: Request) -> Response:
        """Evidence images (as referenced by detections and alerts), only for signed-in users:
        from TimescaleDB (`snapshot:<event id>`, whichever host took it), or from the snapshot
        folder and nowhere else."""
        if await session_user(request) is None:
            raise HTTPException(401, "sign in first")
        from fastapi.responses import FileResponse

        if event_id_of(path) is not None:
            jpeg = await PgSnapshots.on(request.app.state.pool).load(path)
            if jpeg is None:
                raise HTTPException(404, "no such snapshot (retention may have removed it)")
            return Response(jpeg, media_type="image/jpeg")
        resolved = await asyncio.to_thread(_evidence_file, settings.snapshot_folder, path)
        if resolved is None:
            raise HTTPException(404, "no such snapshot")
        return FileResponse(resolved, media_type="image/jpeg")

    return router
