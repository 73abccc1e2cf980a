"""The local mailbox and SMS log, from the console (dev mode only: `console.dev_pages`, which
the demo turns on): what the local SMTP server and Twilio endpoint received, newest first,
with each email's text, so a demo user sees the notifications where they work."""

from __future__ import annotations

import asyncio
import json
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from citywatch.console.auth import session_user

SHOWN = 50


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def email_text(mail_dir: Path, name: str) -> str | None:
    """The plain text of one received email, by its file name in the mailbox (nothing else)."""
    path = mail_dir / name
    if path.parent != mail_dir or path.suffix != ".eml" or not path.is_file():
        return None
    message = message_from_bytes(path.read_bytes(), policy=default_policy)
    body = message.get_body(preferencelist=("plain",))
    return str(body.get_content()) if body is not None else ""


def outbox_router(mail_dir: Path, sms_file: Path, templates: Jinja2Templates) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/dev/outbox", response_class=HTMLResponse)
    async def outbox(request: Request) -> Response:
        user = await session_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        mails = (await asyncio.to_thread(_jsonl, mail_dir / "index.jsonl"))[-SHOWN:][::-1]
        texts = (await asyncio.to_thread(_jsonl, sms_file))[-SHOWN:][::-1]
        calls = (await asyncio.to_thread(_jsonl, sms_file.with_name("calls.jsonl")))[-SHOWN:][::-1]
        return templates.TemplateResponse(request, "outbox.html", {
            "user": user, "mails": mails, "texts": texts, "calls": calls, "mail_dir": mail_dir,
            "sms_file": sms_file})

    @router.get("/dev/outbox/mail/{name}")
    async def one_mail(name: str, request: Request) -> Response:
        if await session_user(request) is None:
            raise HTTPException(401, "sign in first")
        text = await asyncio.to_thread(email_text, mail_dir, name)
        if text is None:
            raise HTTPException(404, "no such email in the local mailbox")
        return Response(text, media_type="text/plain; charset=utf-8")

    return router
