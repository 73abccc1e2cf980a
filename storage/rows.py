"""How each event type becomes a row: the columns we query typed, the rest as jsonb."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from detectors.events import Detection
from ingest.events import DataQuality, DroneTelemetry, Event, GeofenceEvent, Reading, SourceHealth
from notifier.events import AlertAck, AlertComment, DeliveryReceipt, Notification
from rules.events import Alert, ResolveRequest


@dataclass(frozen=True)
class TableSpec:
    """`once_per_event_id`: the event id alone identifies a row, whatever its time. An alert
    transition is one (uuid5 of the alert and the transition), but two workers can both
    compute it, at two event times, while a partition briefly has two owners in a rebalance;
    the primary key (event_id, time) that a hypertable needs would then keep both."""

    table: str
    columns: tuple[str, ...]
    row: Callable[[Any], tuple[Any, ...]]
    once_per_event_id: bool = False


def _json(value: Any) -> str:
    """jsonb text; orjson is about six times faster than json.dumps on the writer's hot path."""
    return orjson.dumps(value).decode()


def _reading(e: Reading) -> tuple[Any, ...]:
    pos = e.position
    return (e.time, e.event_id, e.source_id, _json(e.values), _json(e.units),
            e.period_s, e.aqi, e.aqi_pollutant, pos.lat if pos else None, pos.lon if pos else None,
            e.nowcast_aqi, e.nowcast_pollutant)


def _detection(e: Detection) -> tuple[Any, ...]:
    boxes = _json([b.model_dump(exclude_none=True) for b in e.boxes])
    labels = sorted({b.label for b in e.boxes})
    return (e.time, e.event_id, e.source_id, e.frame_event_id, e.model, e.model_version,
            len(e.boxes), labels, boxes, e.inference_ms, e.snapshot,
            _json([c.model_dump() for c in e.crossings]) if e.crossings else None,
            e.frame_width, e.frame_height, e.kind,
            e.position.lat if e.position else None, e.position.lon if e.position else None)


def _receipt(e: DeliveryReceipt) -> tuple[Any, ...]:
    return (e.time, e.event_id, e.provider_id, e.status, e.error_code, e.to)


def _comment(e: AlertComment) -> tuple[Any, ...]:
    return (e.time, e.event_id, e.alert_id, e.rule_id, e.group_key, e.by, e.text)


def _resolve(e: ResolveRequest) -> tuple[Any, ...]:
    """Kept with the comments: a closing note in the alert's timeline."""
    note = f"resolved by hand{': ' + e.reason if e.reason else ''}"
    return (e.time, e.event_id, e.alert_id, e.rule_id, e.group_key, e.by, note)


def _ack(e: AlertAck) -> tuple[Any, ...]:
    return (e.time, e.event_id, e.alert_id, e.rule_id, e.group_key, e.by, e.via, e.note)


def _alert(e: Alert) -> tuple[Any, ...]:
    return (e.time, e.event_id, e.alert_id, e.rule_id, e.state, e.severity, e.source_id, e.title,
            e.started_at, e.resolved_at, _json(e.labels), e.evidence.model_dump_json(), e.group_key,
            e.reminder, e.muted, e.route)


def _notification(e: Notification) -> tuple[Any, ...]:
    return (e.time, e.event_id, e.alert_id, e.alert_state, e.rule_id, e.recipient, e.channel,
            e.address, e.status, e.attempts, e.provider_id, e.error, e.step, e.reminder)


def _source_event(e: SourceHealth | DataQuality | GeofenceEvent) -> tuple[Any, ...]:
    issue, active = (
        (e.issue, e.active) if isinstance(e, DataQuality)
        else (e.fence, e.inside) if isinstance(e, GeofenceEvent)
        else (None, None)
    )
    return (e.time, e.event_id, e.source_id, e.kind, issue, active, e.model_dump_json())


def _drone(e: DroneTelemetry) -> tuple[Any, ...]:
    return (e.time, e.event_id, e.source_id, e.position.lat, e.position.lon, e.altitude_m,
            e.relative_altitude_m, e.heading_deg, e.speed_m_s, e.battery_pct)


_SOURCE_EVENT_COLUMNS = ("time", "event_id", "source_id", "kind", "issue", "active", "body")

TABLES: dict[type[Event], TableSpec] = {
    Reading: TableSpec("readings", (
        "time", "event_id", "source_id", "values", "units", "period_s", "aqi", "aqi_pollutant",
        "lat", "lon", "nowcast_aqi", "nowcast_pollutant"), _reading),
    Detection: TableSpec("detections", (
        "time", "event_id", "source_id", "frame_event_id", "model", "model_version", "box_count",
        "labels", "boxes", "inference_ms", "snapshot", "crossings", "frame_width", "frame_height", "kind",
        "lat", "lon"),
        _detection),
    Alert: TableSpec("alerts", (
        "time", "event_id", "alert_id", "rule_id", "state", "severity", "source_id", "title",
        "started_at", "resolved_at", "labels", "evidence", "group_key", "reminder", "muted", "route"),
        _alert, once_per_event_id=True),
    Notification: TableSpec("notifications", (
        "time", "event_id", "alert_id", "alert_state", "rule_id", "recipient", "channel",
        "address", "status", "attempts", "provider_id", "error", "step", "reminder"), _notification),
    DeliveryReceipt: TableSpec("delivery_receipts", (
        "time", "event_id", "provider_id", "status", "error_code", "recipient_address"), _receipt),
    AlertComment: TableSpec("alert_comments", (
        "time", "event_id", "alert_id", "rule_id", "group_key", "by_whom", "text"), _comment),
    ResolveRequest: TableSpec("alert_comments", (
        "time", "event_id", "alert_id", "rule_id", "group_key", "by_whom", "text"), _resolve),
    AlertAck: TableSpec("alert_acks", (
        "time", "event_id", "alert_id", "rule_id", "group_key", "by_whom", "via", "note"), _ack),
    SourceHealth: TableSpec("source_events", _SOURCE_EVENT_COLUMNS, _source_event),
    DataQuality: TableSpec("source_events", _SOURCE_EVENT_COLUMNS, _source_event),
    GeofenceEvent: TableSpec("source_events", _SOURCE_EVENT_COLUMNS, _source_event),
    DroneTelemetry: TableSpec("drone_telemetry", (
        "time", "event_id", "source_id", "lat", "lon", "altitude_m", "relative_altitude_m", "heading_deg",
        "speed_m_s", "battery_pct"), _drone),
}

EVENT_TABLES = tuple(dict.fromkeys(spec.table for spec in TABLES.values()))
