"""What a notification channel declares about itself, once, in its own module.

A channel module (notifier/email.py, sms.py, voice.py, webhook.py) ends with one
`ChannelKind`: its name, its settings model, the recipient field that holds its address,
the secrets it cannot run without (`required_secrets` on the settings), the form of text
it carries, how it is built, and how its message looks in a preview. The registry
(notifier/channel_registry.py) lists the kinds, and everything else takes channel names,
settings keys, address fields, schema enums and CLI choices from there: adding a channel
is its module and one line in the registry (plus a Person field if its address is new).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from notifier.channels import Channel, Message

ImageLoader = Callable[[str], Awaitable[bytes | None]]
"""The JPEG a snapshot reference names (None: there is none)."""

S = TypeVar("S", bound=BaseModel)


@dataclass(frozen=True)
class MessageForm:
    """Which text a channel carries: the short one (the rule's `sms` template, for texts and
    calls), cut to `max_segments` SMS segments where set; or the long one (email subject,
    body, HTML and the structured alert)."""

    short: bool = False
    max_segments: int | None = None


LONG_FORM = MessageForm()


@dataclass(frozen=True)
class ChannelNeeds:
    """What the composition root hands every channel it builds (only email uses it today)."""

    load_image: ImageLoader


def show_as_json(message: Message, settings: object) -> str:
    """The default preview: what a machine receiving the message would read."""
    shown = {"subject": message.subject, "text": message.text, **message.data}
    return json.dumps(shown, indent=2, default=str)


@dataclass(frozen=True)
class ChannelKind(Generic[S]):
    name: str
    settings: type[S]
    address: str
    """The `Person` field (notifier/people.py) that holds a recipient's address on it."""
    build: Callable[[S, ChannelNeeds], Channel]
    form: Callable[[S | None], MessageForm] = lambda settings: LONG_FORM
    """The text it carries, under its settings (None: not configured, e.g. in a preview)."""
    preview: Callable[[Message, S | None], str] = show_as_json
    """`citywatch notify preview`: the message as this channel would send it."""

    @property
    def required_secrets(self) -> tuple[str, ...]:
        secrets: tuple[str, ...] = getattr(self.settings, "required_secrets", ())
        return secrets
