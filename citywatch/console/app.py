"""The operator console: sign-in, the live alert feed, the notification and history APIs.

Server-rendered Jinja2 pages with a little JavaScript served from `static/` (no CDN at
run time). Sessions are held by the server (the `console_sessions` table); the browser keeps
only their random id in a signed cookie (SameSite=Strict, Secure behind https), so signing
out or disabling a user ends a session everywhere. Every route names the least role it
needs (see `auth`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from citywatch.console.auth import (
    SESSION_MAX_AGE_S,
    AsViewer,
    authenticate,
    csrf_ok,
    csrf_token,
    log_in,
    log_out,
    session_user,
    viewer,
)
from citywatch.console.deadletters_api import deadletters_router
from citywatch.console.history_api import history_router
from citywatch.console.live import LiveFeed, sse
from citywatch.console.logs import install as install_log_redaction
from citywatch.console.notify_api import notify_router
from citywatch.console.outbox_page import outbox_router
from citywatch.console.pages import pages_router
from citywatch.console.problems import conforming_errors
from citywatch.console.rules_api import rules_router
from citywatch.console.strict_query import known_query_only
from citywatch.console.throttle import LoginThrottle
from citywatch.publisher import KafkaPublisher
from citywatch.rule_checks import against
from citywatch.settings import Settings
from citywatch.topics import Topics
from citywatch.watchdog import watching
from storage.migrate import migrate
from storage.people import audit
from storage.queries import recent_alerts

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
log = logging.getLogger(__name__)


def session_secret(settings: Settings) -> str:
    secret = settings.console.session_secret
    if secret is not None:
        return secret.get_secret_value()
    log.warning("console.session_secret is not set (CITYWATCH_CONSOLE__SESSION_SECRET): sessions end "
                "when the console restarts")
    return secrets.token_urlsafe(32)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(settings.storage.dsn, min_size=1, max_size=4)
        async with app.state.pool.acquire() as connection:
            await migrate(connection)
        broker = settings.broker
        topics = Topics(broker.topic_prefix)
        publisher = KafkaPublisher(broker.bootstrap_servers, topics, broker.max_message_bytes)
        await publisher.start()
        app.state.publisher = publisher
        app.state.feed = LiveFeed(broker.bootstrap_servers, topics)
        app.state.feed.start()
        try:
            async with watching(settings) as watchdog:
                app.state.watchdog = watchdog
                yield
        finally:
            await app.state.feed.stop()
            await publisher.stop()
            await app.state.pool.close()

    app = FastAPI(title="CityWatch console", lifespan=lifespan, dependencies=[Depends(known_query_only)])
    install_log_redaction()
    throttle = LoginThrottle()

    async def out_of_range(request: Request, exc: Exception) -> JSONResponse:
        """A value the database or the calendar cannot hold is the request's fault: 400."""
        return JSONResponse({"detail": f"a parameter is out of range: {exc}"[:500]}, status_code=400)

    for error in (asyncpg.DataError, asyncpg.exceptions._base.DataError, OverflowError):
        app.add_exception_handler(error, out_of_range)
    app.add_exception_handler(StarletteHTTPException, conforming_errors)
    public = settings.console.public_url or ""
    app.add_middleware(SessionMiddleware, secret_key=session_secret(settings), session_cookie="citywatch",
                       max_age=SESSION_MAX_AGE_S, same_site="strict", https_only=public.startswith("https://"))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(history_router(), dependencies=[Depends(viewer)])
    app.include_router(notify_router(settings))
    app.include_router(rules_router(settings.rules.allowed_lateness, against(settings)))
    app.include_router(pages_router(settings, TEMPLATES))
    app.include_router(deadletters_router(TEMPLATES, Topics(settings.broker.topic_prefix)))
    TEMPLATES.env.globals["dev_pages"] = settings.console.dev_pages
    if settings.console.dev_pages:
        dev = settings.devservers
        app.include_router(outbox_router(dev.mail_dir, dev.sms_file, TEMPLATES))

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, str]:
        try:
            await request.app.state.pool.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError) as exc:
            raise HTTPException(503, f"database unavailable: {exc}") from exc
        return {"status": "ok"}

    @app.get("/healthz/group")
    async def group_health(request: Request) -> JSONResponse:
        """The worker group as the watchdog last saw it: 503 while it is stalled (for an
        external dead-man's switch), 404 when the watchdog is off."""
        watchdog = request.app.state.watchdog
        if watchdog is None:
            raise HTTPException(404, "the group watchdog is off (watchdog.enabled)")
        verdict = watchdog.verdict
        return JSONResponse(verdict.as_json(), status_code=503 if verdict.status == "stalled" else 200)

    @app.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, error: str | None = None) -> HTMLResponse:
        context = {"csrf": csrf_token(request), "error": error}
        return TEMPLATES.TemplateResponse(request, "login.html", context)

    @app.post("/login")
    async def login(request: Request, username: str = Form(...), password: str = Form(...),
                    csrf_token_field: str = Form("", alias="csrf_token")) -> Response:
        if not csrf_ok(request, csrf_token_field):
            raise HTTPException(403, "missing or wrong CSRF token")
        address = request.client.host if request.client else "?"
        wait = throttle.retry_after(username, address)
        if wait is not None:
            await audit(request.app.state.pool, username[:200], "login throttled", address)
            raise HTTPException(429, "too many failed sign-ins: try again later",
                                headers={"Retry-After": str(max(1, round(wait)))})
        user = await authenticate(request.app.state.pool, username, password)
        if user is None:
            throttle.failed(username, address)
            await audit(request.app.state.pool, username[:200], "login failed")
            return RedirectResponse("/login?error=1", status_code=303)
        throttle.succeeded(username)
        await log_in(request, user)
        await audit(request.app.state.pool, user.name, "login")
        return RedirectResponse("/", status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await log_out(request)
        return RedirectResponse("/login", status_code=303)

    @app.get("/api/alerts")
    async def alerts(request: Request, user: AsViewer,
                     limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
        return await recent_alerts(request.app.state.pool, limit)

    @app.get("/", response_class=HTMLResponse)
    async def feed(request: Request) -> Response:
        user = await session_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        rows = await recent_alerts(request.app.state.pool, 100)
        return TEMPLATES.TemplateResponse(request, "feed.html", {
            "alerts": rows, "user": user, "csrf": csrf_token(request), "can_act": user.can("operator")})

    @app.get("/events/alerts")
    async def live(request: Request, user: AsViewer) -> StreamingResponse:
        """Server-Sent Events: every new alert transition and acknowledgement, as it happens."""
        feed: LiveFeed = request.app.state.feed

        async def stream() -> AsyncIterator[str]:
            yield ": connected\n\n"
            async for item in feed.subscribe():
                if await request.is_disconnected():
                    break
                yield sse(item)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return app
