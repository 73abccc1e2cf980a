"""SMS through the official twilio client (notifier/twilio_client.py), spread over a pool of
sender numbers at each number's rate."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ingest.settings_base import Strict
from notifier.channel_kinds import ChannelKind, MessageForm
from notifier.channels import Message
from notifier.segments import segments
from notifier.senders import Sender, SenderPool
from notifier.twilio_client import TwilioAccount, TwilioAccountSettings


class SmsSenderSettings(Strict):
    number: str = Field(pattern=r"^\+[1-9][0-9]{6,14}$")
    segments_per_s: float = Field(default=1.0, gt=0)


class TwilioSettings(TwilioAccountSettings):
    status_callback: str | None = Field(default=None, description="URL Twilio posts delivery statuses to")
    segments_per_s: float = Field(default=1.0, gt=0,
                                  description="from_number's rate (long code 1, toll-free 3)")
    more_senders: list[SmsSenderSettings] = Field(default_factory=list, description="a pool shares the load")
    max_segments: int = Field(default=1, ge=1, le=10, description="longer texts are cut, keeping the start")
    validity_period_s: int | None = Field(default=None, ge=1, le=36000,
                                          description="Twilio drops a message still queued after this")


class SmsChannel:
    name = "sms"

    def __init__(self, config: TwilioSettings) -> None:
        self.config = config
        self.form = _form(config)
        self._account = TwilioAccount(config)
        self.senders = SenderPool([Sender(config.from_number, config.segments_per_s),
                                   *(Sender(s.number, s.segments_per_s) for s in config.more_senders)])

    async def close(self) -> None:
        """Close the client's pooled HTTP session."""
        await self._account.close()

    async def send(self, address: str, message: Message) -> str:
        sender = await self.senders.acquire(segments(message.text))  # waits for the sender's rate
        kwargs: dict[str, Any] = {"to": address, "from_": sender, "body": message.text}
        if self.config.status_callback:
            kwargs["status_callback"] = self.config.status_callback
        if self.config.validity_period_s:
            kwargs["validity_period"] = self.config.validity_period_s
        created = await self._account.call(self._account.client.messages.create_async(**kwargs))
        return str(created.sid)


def _form(settings: TwilioSettings | None) -> MessageForm:
    return MessageForm(short=True, max_segments=settings.max_segments if settings is not None else 1)


def _preview(message: Message, settings: TwilioSettings | None) -> str:
    return f"{message.text}\n[{len(message.text)} characters, {segments(message.text)} segment(s)]"


KIND = ChannelKind(name="sms", settings=TwilioSettings, address="phone",
                   build=lambda settings, needs: SmsChannel(settings), form=_form, preview=_preview)
