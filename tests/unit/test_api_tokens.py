"""API tokens without a database: their form, their hash, and the role a token acts with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from citywatch.console.roles import ROLES
from citywatch.console.tokens import lesser, new_token, parse, secret_hash, token_user
from storage.people import StoredToken

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def test_a_new_token_parses_back_into_its_id_and_secret() -> None:
    made = new_token()
    assert made.text.startswith("cwt_") and parse(made.text) == (made.id, made.secret)
    assert len(made.secret) >= 43 and new_token().secret != made.secret  # 256 random bits each
    for broken in ("", "cwt_", "cwt_abc_secret", f"xyz_{made.id}_{made.secret}", f"cwt_{made.id}_"):
        assert parse(broken) is None, broken


def test_a_token_never_acts_above_its_user() -> None:
    assert [lesser(role, "operator") for role in ROLES] == ["viewer", "operator", "operator", "operator"]
    assert lesser("admin", "admin") == "admin"


class OneToken:
    """The storage functions token_user calls, over one stored token."""

    def __init__(self, stored: StoredToken) -> None:
        self.stored = stored
        self.touched = 0

    async def fetchrow(self, sql: str, token_id: str) -> dict[str, Any] | None:
        return self.stored.__dict__ if token_id == self.stored.id else None

    async def execute(self, sql: str, *args: Any) -> str:
        self.touched += 1
        return "UPDATE 1"


def stored(secret: str, **changes: Any) -> StoredToken:
    fields: dict[str, Any] = {"id": "0123456789ab", "username": "ana", "secret_hash": secret_hash(secret),
                              "role": "admin", "user_role": "operator", "user_disabled": False,
                              "expires_at": NOW + timedelta(days=1), "revoked_at": None}
    return StoredToken(**{**fields, **changes})


async def test_only_a_live_token_of_an_enabled_user_is_accepted() -> None:
    text = "cwt_0123456789ab_the-secret"
    db = OneToken(stored("the-secret"))
    user = await token_user(db, text, NOW)  # type: ignore[arg-type]
    assert user is not None and (user.name, user.role) == ("ana", "operator") and db.touched == 1
    assert await token_user(db, "cwt_0123456789ab_another", NOW) is None  # type: ignore[arg-type]
    assert await token_user(db, "cwt_ba9876543210_the-secret", NOW) is None  # type: ignore[arg-type]
    for change in ({"expires_at": NOW}, {"revoked_at": NOW}, {"user_disabled": True}):
        assert await token_user(OneToken(stored("the-secret", **change)), text, NOW) is None, change  # type: ignore[arg-type]
