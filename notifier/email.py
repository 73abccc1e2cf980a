"""Email through SMTP with aiosmtplib (STARTTLS/TLS and auth where configured).

Every email carries `Date` and `Message-ID` (RFC 5322 requires the one and expects the
other). Header values come partly from rule authors (the title) and partly from data, so
they are sanitised, never fatal: a line break or control character becomes a space and a
very long subject is shortened. A message that still cannot be built is a permanent
delivery error for that one email, never an exception out of the channel.

The evidence snapshot is shown inline when its loader finds it within
`IMAGE_TIMEOUT_S`; a snapshot that is missing, too big, not a JPEG, or kept in a database
that is down never stops or delays an email: it goes without the picture.
"""

from __future__ import annotations

import asyncio
import logging
import re
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import aiosmtplib
from pydantic import Field

from ingest.settings_base import Secret, Strict, reveal
from notifier.channel_kinds import LONG_FORM, ChannelKind, ImageLoader
from notifier.channels import DeliveryError, Message

log = logging.getLogger(__name__)


class SmtpSettings(Strict):
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    from_addr: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    username: str | None = None
    password: Secret = None
    use_tls: bool = False
    start_tls: bool | None = None
    timeout_s: float = Field(default=10.0, gt=0)


MAX_INLINE_IMAGE_BYTES = 2_000_000
IMAGE_TIMEOUT_S = 2.0

MAX_SUBJECT_CHARS = 250
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def header_value(text: str, limit: int = MAX_SUBJECT_CHARS) -> str:
    """One safe header line: control characters (CR, LF, NUL ...) folded to a space, trimmed."""
    clean = " ".join(_CONTROL.sub(" ", text).split())
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


async def read_image_file(path: str) -> bytes | None:
    """A snapshot kept as a file (detectors/snapshots.py FolderSnapshots)."""
    try:
        return await asyncio.to_thread(Path(path).read_bytes)
    except OSError:
        return None


async def _inline_image(load: ImageLoader, reference: str | None) -> bytes | None:
    if not reference:
        return None
    try:
        data = await asyncio.wait_for(load(reference), IMAGE_TIMEOUT_S)
    except Exception as exc:  # the picture is optional, the email is not
        log.warning("the email goes without its snapshot %s: %s: %s", reference, type(exc).__name__, exc)
        return None
    if data is None or not data.startswith(b"\xff\xd8") or len(data) > MAX_INLINE_IMAGE_BYTES:
        return None
    return data


class EmailChannel:
    name = "email"

    def __init__(self, config: SmtpSettings, load_image: ImageLoader = read_image_file) -> None:
        self.config = config
        self.load_image = load_image
        self.form = LONG_FORM

    async def send(self, address: str, message: Message) -> str:
        image = await _inline_image(self.load_image, message.image) if message.html is not None else None
        try:
            email, message_id = self._build(address, message, image)
        except (ValueError, TypeError) as exc:
            raise DeliveryError(f"the email cannot be built: {exc}", permanent=True) from exc
        cfg = self.config
        try:
            await aiosmtplib.send(
                email,
                hostname=cfg.host,
                port=cfg.port,
                username=cfg.username,
                password=reveal(cfg.password),
                use_tls=cfg.use_tls,
                start_tls=cfg.start_tls,
                timeout=cfg.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"SMTP refused the recipient: {exc}", permanent=True) from exc
        except aiosmtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.code < 600
            raise DeliveryError(f"SMTP {exc.code}: {exc.message}", permanent=permanent) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"SMTP delivery failed: {exc}") from exc
        return message_id

    def _build(self, address: str, message: Message, image: bytes | None = None) -> tuple[EmailMessage, str]:
        cfg = self.config
        if _CONTROL.search(address):
            raise ValueError(f"the address {address!r} holds control characters")
        email = EmailMessage()
        email["From"] = cfg.from_addr
        email["To"] = address
        email["Subject"] = header_value(message.subject)
        email["Date"] = formatdate(localtime=False, usegmt=True)
        domain = cfg.from_addr.partition("@")[2] or "citywatch.local"
        message_id = make_msgid(domain=domain)
        if message.thread_id:
            root = f"<{message.thread_id}@{domain}>"
            if message.first_in_thread:
                message_id = root
            else:  # updates and the resolve land in the firing's thread
                email["In-Reply-To"] = root
                email["References"] = root
        email["Message-ID"] = message_id
        email.set_content(message.text)
        if message.html is not None:
            email.add_alternative(message.html, subtype="html")
            if image is not None:
                *_, html_part = email.iter_parts()  # text, then the HTML alternative
                html_part.add_related(image, maintype="image", subtype="jpeg", cid="<snapshot>",
                                      filename="snapshot.jpg")
        return email, message_id


def _preview(message: Message, settings: SmtpSettings | None) -> str:
    return f"Subject: {message.subject}\n\n{message.text}"


KIND = ChannelKind(
    name="email", settings=SmtpSettings, address="email",
    build=lambda settings, needs: EmailChannel(settings, needs.load_image), preview=_preview)
