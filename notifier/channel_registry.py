"""Every notification channel, by name: the one list that the `channels` settings, the
recipients' address fields, the rule schema, the CLI's choices and the secrets checked at
start-up are taken from. A new channel is its module (ending in a `ChannelKind`) and one
line here."""

from __future__ import annotations

from typing import Any

from notifier import email, sms, voice, webhook
from notifier.channel_kinds import ChannelKind

CHANNEL_KINDS: dict[str, ChannelKind[Any]] = {
    kind.name: kind for kind in (email.KIND, sms.KIND, voice.KIND, webhook.KIND)}

CHANNEL_ADDRESSES: dict[str, str] = {name: kind.address for name, kind in CHANNEL_KINDS.items()}
"""Each channel and the Person field that holds a recipient's address on it."""
