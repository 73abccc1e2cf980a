"""The rule editor's API: the live rule files, checking a draft as it is typed (the same
checker as `citywatch rules check`), its diff against the live version, a replay of the
last hours through it, publishing (with the audit trail) and rolling back."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from citywatch.console.auth import AsRuleEditor, AsViewer
from citywatch.rulebook import publish_rules_message
from notifier.templates import render
from rules.library import RuleFileVersion
from rules.loader import RuleCheck, parse_rules
from rules.model import Rule
from rules.replay import replay
from rules.timekeeping import AllowedLateness
from rules.yaml_source import YamlFileError
from storage.history import QUERIES, history
from storage.people import audit
from storage.rules_archive import StaleEdit, diff_of, live_rule_files, publish_edit

T = TypeVar("T")
NAME = r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}\.ya?ml$"


class Draft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    content: str = Field(max_length=1_000_000)


class Publication(Draft):
    comment: str = Field(default="", max_length=2000)
    replaces: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    """The sha256 of the live version this draft edits; left out for a new file."""


class Trial(Draft):
    hours: float = Field(default=24, gt=0, le=24 * 31)


class Rollback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    version: int = Field(ge=1, le=2**31 - 1)


def check(draft: Draft, against: RuleCheck | None = None) -> tuple[list[Rule], list[dict[str, Any]]]:
    """`against`: what the settings the rules will run with require (citywatch.rule_checks)."""
    try:
        return parse_rules(draft.content, draft.name, against), []
    except YamlFileError as exc:
        return [], [{"line": e.line, "column": e.column, "message": e.message} for e in exc.errors]


CHECK_TIMEOUT_S = 5.0
CHECKS_AT_ONCE = 2
_checking = asyncio.Semaphore(CHECKS_AT_ONCE)


async def off_loop(work: Callable[[], T], what: str) -> T:
    """CPU-heavy work (parsing and checking rules, rendering templates) in a thread, a few at
    a time and within a time limit, so a viewer's huge draft cannot stall the console."""
    async with _checking:
        try:
            return await asyncio.wait_for(asyncio.to_thread(work), CHECK_TIMEOUT_S)
        except TimeoutError as exc:
            raise HTTPException(422, f"{what} took longer than {CHECK_TIMEOUT_S:g} s: simplify it") from exc


def rules_router(lateness: AllowedLateness | None = None, against: RuleCheck | None = None) -> APIRouter:
    router = APIRouter(prefix="/api/rules", tags=["rules"])

    async def checked(draft: Draft) -> tuple[list[Rule], list[dict[str, Any]]]:
        return await off_loop(partial(check, draft, against), "checking the rule file")

    @router.get("/files")
    async def files(request: Request, user: AsViewer) -> list[dict[str, Any]]:
        """The live rule files (as archived from the rules topic) and the rules in each."""
        live = await live_rule_files(request.app.state.pool)

        def summarise() -> list[dict[str, Any]]:
            listing = []
            for name, text in sorted(live.items()):
                rules, errors = check(Draft(name=name, content=text), against)
                summary = [{"id": r.id, "title": r.title, "severity": r.severity, "enabled": r.enabled}
                           for r in rules]
                listing.append({"name": name, "content": text, "errors": errors, "rules": summary,
                                "sha256": hashlib.sha256(text.encode()).hexdigest()})
            return listing

        return await off_loop(summarise, "checking the live rule files")

    @router.get("/files/{name:path}/versions")
    async def versions(name: str, request: Request, user: AsViewer) -> list[dict[str, Any]]:
        rows = await request.app.state.pool.fetch(
            "SELECT version, author, published_at, comment, accepted, errors, diff,"
            " content IS NULL AS deleted FROM rule_versions WHERE name = $1 ORDER BY version DESC", name)
        return [dict(row) for row in rows]

    @router.post("/check")
    async def check_draft(draft: Draft, user: AsViewer) -> dict[str, Any]:
        """Every problem with its line and column, as `citywatch rules check` reports them."""
        rules, errors = await checked(draft)
        return {"errors": errors, "rules": [r.id for r in rules]}

    @router.post("/diff")
    async def diff(draft: Draft, request: Request, user: AsViewer) -> dict[str, str]:
        live = (await live_rule_files(request.app.state.pool)).get(draft.name)
        return {"diff": diff_of(draft.name, live, draft.content)}

    @router.post("/test")
    async def test(trial: Trial, request: Request, user: AsRuleEditor) -> dict[str, Any]:
        """What the draft would have fired over the last hours of stored history."""
        rules, errors = await checked(trial)
        if errors:
            raise HTTPException(422, errors)
        end = datetime.now(UTC)
        start = end - timedelta(hours=trial.hours)
        types = sorted({t for r in rules for t in r.event_types if t in QUERIES}, key=str)
        stored = history(request.app.state.pool, types, start, end)
        alerts = await replay(rules, stored, end, lateness=lateness)
        rendered = await off_loop(lambda: [render("sms", a).text for a in alerts], "rendering the messages")
        return {"from": start, "to": end, "alerts": [
            {"time": a.time, "state": a.state, "rule_id": a.rule_id, "group_key": a.group_key,
             "sms": text} for a, text in zip(alerts, rendered, strict=True)]}

    @router.post("/publish", status_code=201)
    async def publish(publication: Publication, request: Request, user: AsRuleEditor) -> dict[str, Any]:
        """Validated here and again by every worker; refused drafts are never sent, nor drafts
        of a file that changed since the editor opened it (409, with the live version's sha256)."""
        rules, errors = await checked(publication)
        if errors:
            raise HTTPException(422, errors)
        version = RuleFileVersion(name=publication.name, content=publication.content, author=user.name,
                                  published_at=datetime.now(UTC), comment=publication.comment)
        try:
            await publish_edit(request.app.state.pool, version, publication.replaces,
                               lambda: publish_rules_message(request.app.state.publisher, version))
        except StaleEdit as exc:
            raise HTTPException(409, {"message": str(exc), "live_sha256": exc.live_sha256}) from exc
        await audit(request.app.state.pool, user.name, "publish rules", publication.name,
                    {"rules": [r.id for r in rules], "comment": publication.comment,
                     "sha256": version.sha256})
        return {"name": publication.name, "rules": [r.id for r in rules], "sha256": version.sha256}

    @router.post("/rollback", status_code=201)
    async def rollback(target: Rollback, request: Request, user: AsRuleEditor) -> dict[str, Any]:
        """Publish an earlier accepted version again (a new version, so the history stays whole)."""
        content = await request.app.state.pool.fetchval(
            "SELECT content FROM rule_versions WHERE name = $1 AND version = $2 AND accepted", target.name,
            target.version)
        if content is None:
            raise HTTPException(404, f"no accepted version {target.version} of {target.name}")
        version = RuleFileVersion(
            name=target.name, content=content, author=user.name, published_at=datetime.now(UTC),
            comment=f"roll back to version {target.version}")
        await publish_rules_message(request.app.state.publisher, version)
        await audit(request.app.state.pool, user.name, "roll back rules", target.name, {"to": target.version})
        return {"name": target.name, "sha256": version.sha256}

    return router
