"""SMS through the official twilio client (notifier/twilio_client.py), spread over a pool of
sender numbers at each number's rate."""

from __future__ import annotations

from typing import Any

from notifier.channels import Message
from notifier.segments import segments
from notifier.senders import Sender, SenderPool
from notifier.settings import TwilioSettings
from notifier.twilio_client import TwilioAccount


class SmsChannel:
    name = "sms"

    def __init__(self, config: TwilioSettings) -> None:
        self.config = config
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
