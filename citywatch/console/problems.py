"""Every 422 the API gives has the shape its OpenAPI schema declares (FastAPI's
HTTPValidationError: a list of {loc, msg, type}), whoever raised it: a filter the storage
refuses, a rule file's errors at their line, a duration that does not parse. Clients that
read the schema (and schemathesis, in tests/integration/test_api_schema.py) get what it
says; the original fields (a rule error's line, column and message) stay beside them."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException


def validation_items(detail: Any) -> list[dict[str, Any]]:
    items = detail if isinstance(detail, list) else [detail]
    shaped: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, dict):
            place = [item[key] for key in ("line", "column") if isinstance(item.get(key), int)]
            message = str(item.get("msg") or item.get("message") or item)
            shaped.append({**item, "loc": item.get("loc", ["body", *place]), "msg": message,
                           "type": item.get("type", "value_error")})
        else:
            shaped.append({"loc": ["request"], "msg": str(item), "type": "value_error"})
    return shaped


async def conforming_errors(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code != 422:
        return await http_exception_handler(request, exc)
    return JSONResponse({"detail": validation_items(exc.detail)}, status_code=422, headers=exc.headers)
