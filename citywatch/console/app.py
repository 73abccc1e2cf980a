"""Console HTTP app: a health check, the recent-alerts API, and the alert feed page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from citywatch.console.history_api import history_router
from citywatch.console.notify_api import notify_router
from citywatch.publisher import KafkaPublisher
from citywatch.settings import Settings
from citywatch.topics import Topics
from storage.queries import recent_alerts

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def create_app(dsn: str, settings: Settings | None = None) -> FastAPI:
    """The console; with `settings`, also the notification endpoints (acknowledge, on call,
    Twilio webhooks), which publish to Kafka."""
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
        publisher = None
        if settings is not None:
            broker = settings.broker
            publisher = KafkaPublisher(broker.bootstrap_servers, Topics(broker.topic_prefix),
                                       broker.max_message_bytes)
            await publisher.start()
        app.state.publisher = publisher
        try:
            yield
        finally:
            if publisher is not None:
                await publisher.stop()
            await app.state.pool.close()

    app = FastAPI(title="CityWatch console", lifespan=lifespan)
    app.include_router(history_router())
    if settings is not None:
        app.include_router(notify_router(settings))

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, str]:
        try:
            await request.app.state.pool.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError) as exc:
            raise HTTPException(503, f"database unavailable: {exc}") from exc
        return {"status": "ok"}

    @app.get("/api/alerts")
    async def alerts(request: Request, limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
        return await recent_alerts(request.app.state.pool, limit)

    @app.get("/", response_class=HTMLResponse)
    async def feed(request: Request) -> HTMLResponse:
        rows = await recent_alerts(request.app.state.pool, 100)
        return TEMPLATES.TemplateResponse(request, "feed.html", {"alerts": rows})

    return app
