"""Signed acknowledgement links for emails: whoever holds the link may take the alert,
until it expires, as the person it was sent to. No login at 3 a.m., no forgeable URL."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import urlencode

LINK_LIFETIME_S = 7 * 24 * 3600


def _signature(secret: str, alert_id: str, by: str, expires: int) -> str:
    payload = f"{alert_id}|{by}|{expires}".encode()
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AckLinks:
    base_url: str
    secret: str
    lifetime_s: int = LINK_LIFETIME_S

    def link(self, alert_id: str, by: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.lifetime_s)
        query = urlencode({"by": by, "exp": expires, "sig": _signature(self.secret, alert_id, by, expires)})
        return f"{self.base_url.rstrip('/')}/ack/{alert_id}?{query}"


def verify_link(secret: str, alert_id: str, by: str, expires: str, signature: str,
                now: float | None = None) -> bool:
    try:
        deadline = int(expires)
    except ValueError:
        return False
    if deadline < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(_signature(secret, alert_id, by, deadline), signature)
