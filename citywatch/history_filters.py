"""History filters as people type them (HTTP query parameters, command-line options) made
into the storage's EventQuery: one parser for the API and the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from storage.search import EventQuery


def event_query(
    kind: str, start: datetime, end: datetime, *, sources: Sequence[str] = (), classes: Sequence[str] = (),
    severities: Sequence[str] = (), rules: Sequence[str] = (), labels: Sequence[str] = (),
    label_separator: str = ":", bbox: str | None = None, near: str | None = None, text: str | None = None,
    limit: int = 100, after: str | None = None,
) -> EventQuery:
    """Labels are KEY<separator>VALUE, `bbox` four numbers (min lat, min lon, max lat, max lon),
    `near` LAT,LON,METRES. Raises ValidationError for a filter the query refuses and
    ValueError for text that is none of those shapes."""
    data: dict[str, Any] = {
        "kind": kind, "start": start, "end": end, "limit": limit, "after": after, "sources": list(sources),
        "classes": list(classes), "severities": list(severities), "rules": list(rules), "text": text}
    if labels:
        data["label"] = dict(item.split(label_separator, 1) for item in labels)
    if bbox:
        values = [float(v) for v in bbox.split(",")]
        data["bbox"] = dict(zip(("min_lat", "min_lon", "max_lat", "max_lon"), values, strict=True))
    if near:
        lat, lon, radius = (float(v) for v in near.split(","))
        data["near"] = {"lat": lat, "lon": lon, "radius_m": radius}
    return EventQuery.model_validate(data)


def problems(exc: ValidationError) -> list[str]:
    """Each refused filter as 'field: reason'."""
    return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
