"""The channel interface and its errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from notifier.channel_kinds import MessageForm


class DeliveryError(RuntimeError):
    """A provider refused or failed; `permanent` errors are not worth retrying."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str | None = None
    thread_id: str | None = None  # one per alert: email threads its updates under it
    first_in_thread: bool = True
    image: str | None = None  # the evidence snapshot's reference, shown inline (notifier/email.py)
    data: dict[str, Any] = field(default_factory=dict)  # the structured alert, for webhooks
    ack_url: str | None = None  # the recipient's signed acknowledgement link, while the alert fires


class Channel(Protocol):
    name: str
    form: MessageForm
    """The text it carries (notifier/channel_kinds.py)."""

    async def send(self, address: str, message: Message) -> str:
        """Deliver; return the provider's id for the message. Raise DeliveryError on failure."""
        ...
