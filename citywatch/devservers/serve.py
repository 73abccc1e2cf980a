"""The local SMTP server and Twilio endpoint as the settings describe them: for the demo,
and alone (`citywatch devservers`) beside a worker started by hand."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from citywatch.devservers.smtp import LocalSmtpServer
from citywatch.devservers.twilio import LocalTwilioEndpoint
from citywatch.settings import Settings
from notifier.sms import KIND as SMS


def local_devservers(settings: Settings) -> tuple[LocalSmtpServer, LocalTwilioEndpoint]:
    """Built, not started. The Twilio endpoint checks the SMS channel's account and token,
    as Twilio would, where the settings have them."""
    dev = settings.devservers
    sms = settings.channels.of(SMS)
    smtp = LocalSmtpServer(dev.host, dev.smtp_port, dev.mail_dir)
    twilio = LocalTwilioEndpoint(
        dev.host, dev.twilio_port, dev.sms_file, account_sid=sms.account_sid if sms else None,
        auth_token=sms.auth_token.get_secret_value() if sms and sms.auth_token else None)
    return smtp, twilio


async def serve(settings: Settings, say: Callable[[str], None]) -> None:
    """Both, until cancelled."""
    smtp, twilio = local_devservers(settings)
    smtp.start()
    try:
        await twilio.start()
        try:
            say(f"SMTP server on {smtp.address} (mail in {settings.devservers.mail_dir}), Twilio endpoint "
                f"on {twilio.base_url} (texts in {settings.devservers.sms_file}); Ctrl-C stops them")
            await asyncio.Event().wait()
        finally:
            await twilio.stop()
    finally:
        smtp.stop()
