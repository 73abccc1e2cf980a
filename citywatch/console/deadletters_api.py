"""Dead letters in the console: the page (origin, reason, time, payload preview) and the API
behind it; requeueing is an admin's, audited, and goes through citywatch.requeue."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from citywatch.console.auth import AsAdmin, AsViewer, csrf_token, session_user
from citywatch.requeue import CannotRequeue, requeue
from citywatch.topics import Topics
from storage.dead_letters import list_dead_letters
from storage.people import audit


def deadletters_router(templates: Jinja2Templates, topics: Topics) -> APIRouter:
    router = APIRouter()

    @router.get("/deadletters", response_class=HTMLResponse, include_in_schema=False)
    async def page(request: Request) -> Response:
        user = await session_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        letters = await list_dead_letters(request.app.state.pool, 200)
        return templates.TemplateResponse(request, "deadletters.html", {
            "user": user, "csrf": csrf_token(request), "letters": letters, "can_requeue": user.can("admin")})

    @router.get("/api/deadletters")
    async def listing(request: Request, user: AsViewer, limit: int = Query(50, ge=1, le=1000),
                      origin: str | None = Query(None, max_length=300),
                      consumer: str | None = Query(None, max_length=200),
                      pending: bool = False) -> list[dict[str, Any]]:
        return await list_dead_letters(request.app.state.pool, limit, origin, consumer, pending)

    @router.post("/api/deadletters/{letter_id}/requeue")
    async def requeue_one(letter_id: UUID, request: Request, user: AsAdmin) -> dict[str, str]:
        pool = request.app.state.pool
        try:
            topic = await requeue(pool, request.app.state.publisher, topics, letter_id, user.name)
        except CannotRequeue as exc:
            raise HTTPException(409, str(exc)) from exc
        await audit(pool, user.name, "requeue dead letter", str(letter_id), {"topic": topic})
        return {"id": str(letter_id), "topic": topic}

    return router
