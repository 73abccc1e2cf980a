"""Phone calls through Twilio: the alert is read out, and the person called acknowledges it
by pressing 1, for the people a night-time page must wake (an SMS can sleep through).

The call's TwiML says the message inside a <Gather> whose action is the alert's signed
acknowledgement link (notifier/acklinks.py): Twilio posts the key pressed there, signed
with the account's auth token, and the console acknowledges as that person (POST on the
same `/ack/<alert>` link an email carries). Without a link (a resolve, or no console
configured) the call only speaks. The provider's id is the call's SID.
"""

from __future__ import annotations

from pydantic import Field
from twilio.twiml.voice_response import VoiceResponse

from notifier.channel_kinds import ChannelKind, MessageForm
from notifier.channels import Message
from notifier.twilio_client import TwilioAccount, TwilioAccountSettings


class VoiceSettings(TwilioAccountSettings):
    """Phone calls through Twilio: the alert read out, and a key to acknowledge it (1)."""

    language: str = Field(default="en-GB", pattern=r"^[a-z]{2}(-[A-Z]{2})?$", description="of the voice")
    gather_timeout_s: int = Field(default=8, ge=1, le=60, description="how long the call waits for the key")

ACK_DIGIT = "1"
SPOKEN = MessageForm(short=True)
"""A call reads the short text, uncut."""


def call_script(message: Message, settings: VoiceSettings) -> str:
    """The TwiML of one call."""
    response = VoiceResponse()
    if message.ack_url:
        gather = response.gather(num_digits=1, action=message.ack_url, method="POST",
                                 timeout=settings.gather_timeout_s)
        gather.say(f"{message.text} Press {ACK_DIGIT} to acknowledge.", language=settings.language)
        response.say("No key was pressed. The alert is not acknowledged.", language=settings.language)
    else:
        response.say(message.text, language=settings.language)
    return str(response)


class VoiceChannel:
    name = "voice"

    def __init__(self, config: VoiceSettings) -> None:
        self.config = config
        self.form = SPOKEN
        self._account = TwilioAccount(config)

    async def close(self) -> None:
        await self._account.close()

    async def send(self, address: str, message: Message) -> str:
        twiml = call_script(message, self.config)
        created = await self._account.call(self._account.client.calls.create_async(
            to=address, from_=self.config.from_number, twiml=twiml))
        return str(created.sid)


def _preview(message: Message, settings: VoiceSettings | None) -> str:
    """The call's TwiML, as the configured (or a default) voice reads it."""
    spoken = settings or VoiceSettings(account_sid="AC" + "0" * 32, from_number="+10000000")
    return call_script(message, spoken)


KIND = ChannelKind(name="voice", settings=VoiceSettings, address="phone",
                   build=lambda settings, needs: VoiceChannel(settings),
                   form=lambda settings: SPOKEN, preview=_preview)
