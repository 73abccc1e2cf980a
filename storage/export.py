"""Exports of event rows: CSV for spreadsheets, Parquet for analysts' tools, GeoJSON for
maps (only rows with a position). Values that are not scalars (jsonb, arrays) are written
as JSON text in CSV and Parquet."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import pyarrow as pa
import pyarrow.parquet as pq

ExportFormat = Literal["csv", "parquet", "geojson", "json"]
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv", "parquet": "application/vnd.apache.parquet", "geojson": "application/geo+json",
    "json": "application/json",
}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str, sort_keys=True)
    return value


def _json_value(value: Any) -> Any:
    """JSON columns arrive as objects (storage.search decodes them by type); a text that
    looks like JSON stays text."""
    return _plain(value) if not isinstance(value, dict | list) else value


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _plain(row.get(c)) for c in columns])
    return out.getvalue().encode()


def to_parquet(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> bytes:
    table = pa.table({c: [_plain(row.get(c)) for row in rows] for c in columns})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def to_geojson(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> bytes:
    features = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
         "properties": {c: _json_value(row.get(c)) for c in columns if c not in ("lat", "lon")}}
        for row in rows if row.get("lat") is not None and row.get("lon") is not None
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}, default=str).encode()


def to_json(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> bytes:
    return json.dumps([{c: _json_value(row.get(c)) for c in columns} for row in rows], default=str).encode()


def export(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: ExportFormat) -> bytes:
    return {"csv": to_csv, "parquet": to_parquet, "geojson": to_geojson, "json": to_json}[fmt](rows, columns)
