from datetime import UTC, datetime, timedelta, timezone

import pytest

from ingest.events import EventFormatError, FrameHeader, Reading
from ingest.frame_codec import MAGIC, Frame, decode_frame, encode_frame

JPEG = b"\xff\xd8" + b"\x00" * 32 + b"\xff\xd9"


def header() -> FrameHeader:
    return FrameHeader(source_id="cam-1", time=datetime(2026, 1, 1, tzinfo=UTC), sequence=7,
                       width=640, height=480)


def test_frame_round_trip_keeps_header_and_bytes() -> None:
    frame = Frame(header(), JPEG)
    decoded = decode_frame(encode_frame(frame))
    assert decoded.header == frame.header
    assert decoded.jpeg == JPEG


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"CW", "too short"),
        (b"XXXX" + b"\x00" * 10, "not a frame message"),
        (MAGIC + (10_000).to_bytes(4, "big") + b"{}", "exceeds the message"),
        (MAGIC + (2).to_bytes(4, "big") + b"{}" + JPEG, "invalid FrameHeader"),
    ],
)
def test_bad_frame_messages_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(EventFormatError, match=reason):
        decode_frame(raw)


def test_frame_payload_must_be_jpeg() -> None:
    raw = encode_frame(Frame(header(), b"PNG...."))
    with pytest.raises(EventFormatError, match="not a JPEG"):
        decode_frame(raw)


def test_event_time_must_be_aware_and_becomes_utc() -> None:
    local = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    reading = Reading(source_id="s", time=local, values={"no2": 1.0}, units={"no2": "ppb"})
    assert reading.time == datetime(2026, 1, 1, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone"):
        Reading(source_id="s", time=datetime(2026, 1, 1), values={"no2": 1.0}, units={})


def test_every_event_gets_a_unique_id() -> None:
    a = Reading(source_id="s", time=datetime.now(UTC), values={"no2": 1.0}, units={})
    b = Reading(source_id="s", time=datetime.now(UTC), values={"no2": 1.0}, units={})
    assert a.event_id != b.event_id


def test_json_errors_name_the_problem() -> None:
    with pytest.raises(EventFormatError, match="values"):
        Reading.from_json(b'{"source_id":"s","time":"2026-01-01T00:00:00Z","values":{},"units":{}}')
    with pytest.raises(EventFormatError, match="schema_version"):
        Reading.from_json(b'{"source_id":"s","time":"2026-01-01T00:00:00Z","schema_version":99,'
                          b'"values":{"a":1},"units":{}}')
    with pytest.raises(EventFormatError):
        Reading.from_json(b"not json")
