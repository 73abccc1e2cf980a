"""Unknown query parameters are an error on the API: `?sensor=aq-1` (for `source`) used to
return every sensor's events, a wrong answer that looks right. Every /api/ route refuses a
parameter it does not declare with a 422 naming it and the ones it knows."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError


def declared_query(dependant: Any) -> set[str]:
    """The query parameters a route and its dependencies declare, by the name sent."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        names |= {param.alias for param in current.query_params}
        pending.extend(current.dependencies)
    return names


async def known_query_only(request: Request) -> None:
    if not request.url.path.startswith("/api/"):
        return  # pages and callbacks: a tracking parameter on a link must not break them
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return
    known = sorted(declared_query(dependant))
    unknown = sorted(set(request.query_params) - set(known))
    if unknown:
        raise RequestValidationError([
            {"type": "extra_forbidden", "loc": ("query", name), "input": request.query_params.get(name),
             "msg": f"unknown query parameter {name!r} (known: {', '.join(known) or 'none'})"}
            for name in unknown])
