"""Which event type travels on which topic, and decoding by topic."""

from __future__ import annotations

from detectors.events import Detection
from ingest.events import Event, EventFormatError, Reading
from notifier.events import Notification
from rules.events import Alert

EVENT_TYPES: dict[str, type[Event]] = {
    "readings": Reading,
    "detections": Detection,
    "alerts": Alert,
    "notifications": Notification,
}


def decode_event(topic: str, raw: bytes) -> Event:
    """Decode a JSON event from the topic it arrived on; EventFormatError says what is wrong."""
    event_type = EVENT_TYPES.get(topic)
    if event_type is None:
        raise EventFormatError(f"no JSON event type is carried on topic {topic!r}")
    if not raw:
        raise EventFormatError("empty message")
    return event_type.from_json(raw)
