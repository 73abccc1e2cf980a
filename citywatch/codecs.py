"""Which event type travels on which topic, and decoding by topic."""

from __future__ import annotations

import re

from detectors.events import Detection
from ingest.events import (
    DataQuality,
    DroneTelemetry,
    Event,
    EventFormatError,
    GeofenceEvent,
    Reading,
    SourceHealth,
)
from notifier.events import AlertAck, AlertComment, DeliveryReceipt, Notification
from rules.events import Alert, ResolveRequest

EVENT_TYPES: dict[str, type[Event]] = {
    "readings": Reading,
    "detections": Detection,
    "alerts": Alert,
    "notifications": Notification,
    "acks": AlertAck,
}


TELEMETRY_TYPES: dict[str, type[Event]] = {
    "health": SourceHealth, "quality": DataQuality, "drone": DroneTelemetry, "geofence": GeofenceEvent,
    "resolve": ResolveRequest,
}
_KIND = re.compile(rb'"kind"\s*:\s*"([a-z_]+)"')


def decode_event(topic: str, raw: bytes) -> Event:
    """Decode a JSON event from the topic it arrived on; EventFormatError says what is wrong."""
    if topic == "notifications" and (match := _KIND.search(raw or b"")) and match.group(1) == b"receipt":
        return DeliveryReceipt.from_json(raw)  # the topic also carries the provider's receipts
    if topic == "acks" and (match := _KIND.search(raw or b"")) and match.group(1) == b"comment":
        return AlertComment.from_json(raw)  # and acks carries operators' comments
    if topic == "telemetry":
        match = _KIND.search(raw or b"")
        kind = match.group(1).decode() if match else None
        if kind not in TELEMETRY_TYPES:
            raise EventFormatError(f"telemetry event of unknown kind {kind!r}")
        return TELEMETRY_TYPES[kind].from_json(raw)
    event_type = EVENT_TYPES.get(topic)
    if event_type is None:
        raise EventFormatError(f"no JSON event type is carried on topic {topic!r}")
    if not raw:
        raise EventFormatError("empty message")
    return event_type.from_json(raw)
