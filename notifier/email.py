"""Email through SMTP with aiosmtplib (STARTTLS/TLS and auth where configured).

Every email carries `Date` and `Message-ID` (RFC 5322 requires the one and expects the
other). Header values come partly from rule authors (the title) and partly from data, so
they are sanitised, never fatal: a line break or control character becomes a space and a
very long subject is shortened. A message that still cannot be built is a permanent
delivery error for that one email, never an exception out of the channel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import aiosmtplib

from notifier.channels import DeliveryError, Message

MAX_INLINE_IMAGE_BYTES = 2_000_000
MAX_SUBJECT_CHARS = 250
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def header_value(text: str, limit: int = MAX_SUBJECT_CHARS) -> str:
    """One safe header line: control characters (CR, LF, NUL ...) folded to a space, trimmed."""
    clean = " ".join(_CONTROL.sub(" ", text).split())
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def _read_image(path: str | None) -> bytes | None:
    """The snapshot's bytes, or None when there is none (a missing file never stops an email)."""
    if not path:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    return data if data.startswith(b"\xff\xd8") and len(data) <= MAX_INLINE_IMAGE_BYTES else None


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    from_addr: str
    username: str | None = None
    password: str | None = None
    use_tls: bool = False
    start_tls: bool | None = None  # None: upgrade if the server offers it
    timeout_s: float = 10.0


class EmailChannel:
    name = "email"

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, address: str, message: Message) -> str:
        try:
            email, message_id = self._build(address, message)
        except (ValueError, TypeError) as exc:
            raise DeliveryError(f"the email cannot be built: {exc}", permanent=True) from exc
        cfg = self.config
        try:
            await aiosmtplib.send(
                email,
                hostname=cfg.host,
                port=cfg.port,
                username=cfg.username,
                password=cfg.password,
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

    def _build(self, address: str, message: Message) -> tuple[EmailMessage, str]:
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
            image = _read_image(message.image)
            if image is not None:
                *_, html_part = email.iter_parts()  # text, then the HTML alternative
                html_part.add_related(image, maintype="image", subtype="jpeg", cid="<snapshot>",
                                      filename="snapshot.jpg")
        return email, message_id
