"""The channel interface and its errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class DeliveryError(RuntimeError):
    """A provider refused or failed; `permanent` errors are not worth retrying."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Message:
    subject: str
    text: str


class Channel(Protocol):
    name: str

    async def send(self, address: str, message: Message) -> str:
        """Deliver; return the provider's id for the message. Raise DeliveryError on failure."""
        ...
