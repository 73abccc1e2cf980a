"""API tokens: the console's API for scripts and notebooks, without a browser session.

A token reads `cwt_<id>_<secret>`. The id finds the row; only the SHA-256 of the secret is
stored (the secret is 256 random bits, so a fast hash is enough, unlike a password), and
it is compared in constant time. A token acts as its user, with the lesser of its own role
and the user's current one, so demoting or disabling a user takes effect at once. It comes
in an `Authorization: Bearer` header, which a browser never adds by itself, so requests
with it need no CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from citywatch.console.roles import ROLES, Role, User
from storage.people import Db, find_token, touch_token

PREFIX = "cwt"


@dataclass(frozen=True)
class NewToken:
    id: str
    secret: str

    @property
    def text(self) -> str:
        return f"{PREFIX}_{self.id}_{self.secret}"


def new_token() -> NewToken:
    return NewToken(secrets.token_hex(6), secrets.token_urlsafe(32))


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(text: str) -> tuple[str, str] | None:
    prefix, _, rest = text.partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != PREFIX or len(token_id) != 12 or not secret:
        return None
    return token_id, secret


def lesser(a: Role, b: Role) -> Role:
    return a if ROLES.index(a) <= ROLES.index(b) else b


async def token_user(db: Db, text: str, now: datetime | None = None) -> User | None:
    """The user a bearer token acts as, or None (unknown, wrong, expired, revoked, disabled)."""
    parsed = parse(text)
    if parsed is None:
        return None
    token_id, secret = parsed
    stored = await find_token(db, token_id)
    if stored is None or not hmac.compare_digest(stored.secret_hash, secret_hash(secret)):
        return None
    moment = now or datetime.now(UTC)
    if stored.revoked_at is not None or stored.user_disabled or (
            stored.expires_at is not None and stored.expires_at <= moment):
        return None
    if stored.role not in ROLES or stored.user_role not in ROLES:
        return None
    await touch_token(db, token_id)
    return User(stored.username, lesser(stored.role, stored.user_role))
