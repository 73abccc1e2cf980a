"""Dead letters: the original bytes of a message nobody could use, and why.

Every consumer that rejects a message publishes it here (key = origin topic) with
headers naming the reason, the consumer and where it came from, then carries on.
Nothing is dropped silently; an operator can inspect and replay from this topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

Headers = list[tuple[str, bytes]]

MAX_REASON_CHARS = 2000


@dataclass(frozen=True)
class DeadLetter:
    origin_topic: str
    reason: str
    raw: bytes
    consumer: str
    origin_partition: int | None = None
    origin_offset: int | None = None
    source_id: str | None = None
    rejected_at: datetime | None = None

    def headers(self) -> Headers:
        headers: Headers = [
            ("reason", self.reason[:MAX_REASON_CHARS].encode()),
            ("origin_topic", self.origin_topic.encode()),
            ("consumer", self.consumer.encode()),
            ("rejected_at", (self.rejected_at or datetime.now(UTC)).isoformat().encode()),
        ]
        if self.origin_partition is not None:
            headers.append(("origin_partition", str(self.origin_partition).encode()))
        if self.origin_offset is not None:
            headers.append(("origin_offset", str(self.origin_offset).encode()))
        if self.source_id is not None:
            headers.append(("source_id", self.source_id.encode()))
        return headers

    @classmethod
    def from_message(cls, raw: bytes, headers: Headers | None) -> DeadLetter:
        found = {key: value.decode(errors="replace") for key, value in headers or []}
        return cls(
            rejected_at=_moment(found.get("rejected_at")),
            origin_topic=found.get("origin_topic", "?"),
            reason=found.get("reason", "?"),
            raw=raw,
            consumer=found.get("consumer", "?"),
            origin_partition=_number(found.get("origin_partition")),
            origin_offset=_number(found.get("origin_offset")),
            source_id=found.get("source_id"),
        )


def _number(text: str | None) -> int | None:
    return int(text) if text is not None and text.lstrip("-").isdigit() else None


def _moment(text: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)
