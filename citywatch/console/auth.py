"""Who may do what in the console: users with roles, argon2 password hashes, sessions held
by the server (a signed cookie carries only the session's random id and CSRF token), CSRF
tokens for every change.

Roles are ordered (citywatch.console.roles). Every route names the least role it needs;
nothing answers without one (except the login page, the health check and the webhooks that
carry their own signatures). Scripts use API tokens instead of sessions
(citywatch.console.tokens).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from typing import Annotated

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from citywatch.console.roles import ROLES, Role, User
from citywatch.console.tokens import token_user
from storage.people import end_session, find_user, session_owner, start_session, update_hash

__all__ = [
    "ROLES",
    "AsAdmin",
    "AsOperator",
    "AsRuleEditor",
    "AsViewer",
    "Requires",
    "Role",
    "User",
    "authenticate",
    "csrf_ok",
    "csrf_token",
    "hash_password",
    "log_in",
    "log_out",
    "session_user",
]
CSRF_HEADER = "X-CSRF-Token"
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password anybody has")


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise ValueError("a console password has at least 10 characters")
    return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


async def authenticate(pool: asyncpg.Pool, username: str, password: str) -> User | None:
    """The user, when the password is right; the same work either way, so timing does not
    tell whether a name exists."""
    stored = await find_user(pool, username)
    if not await asyncio.to_thread(_verify, stored.password_hash if stored else _DUMMY_HASH, password):
        return None  # argon2 costs tens of milliseconds of CPU: never on the event loop
    if stored is None or stored.disabled:
        return None
    if _hasher.check_needs_rehash(stored.password_hash):
        await update_hash(pool, username, await asyncio.to_thread(_hasher.hash, password))
    return User(stored.username, stored.role)  # type: ignore[arg-type]


SESSION_MAX_AGE_S = 12 * 3600


async def log_in(request: Request, user: User) -> None:
    """A fresh session (no fixation): a random id held by the server, and a CSRF token."""
    request.session.clear()
    session_id = secrets.token_urlsafe(32)
    await start_session(request.app.state.pool, session_id, user.name)
    request.session.update({"sid": session_id, "csrf": secrets.token_urlsafe(32)})


async def log_out(request: Request) -> None:
    """Ends the session on the server too: a copy of the cookie no longer works."""
    session_id = request.session.get("sid")
    if isinstance(session_id, str):
        await end_session(request.app.state.pool, session_id)
    request.session.clear()


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, sent: str | None) -> bool:
    """Whether `sent` is this session's CSRF token (compared in constant time)."""
    expected = request.session.get("csrf")
    return bool(sent) and isinstance(expected, str) and hmac.compare_digest(str(sent), expected)


_bearer = HTTPBearer(auto_error=False, description="an API token: `citywatch users token add`")


async def session_user(request: Request) -> User | None:
    """The signed-in user as the database has them now (one primary-key read per request):
    a session ended by signing out, or of a user since disabled, is no session; a user
    demoted since signing in has their current role."""
    session_id = request.session.get("sid")
    if not isinstance(session_id, str):
        return None
    stored = await session_owner(request.app.state.pool, session_id, SESSION_MAX_AGE_S)
    if stored is None or stored.role not in ROLES:
        request.session.clear()
        return None
    return User(stored.username, stored.role)


class Requires:
    """A FastAPI dependency: the user, who has at least `role`. Either a session (and then
    changes, any method but GET/HEAD, also need the session's CSRF token in a header or form
    field) or an API token as a bearer header (which no browser sends by itself: no CSRF)."""

    def __init__(self, role: Role) -> None:
        self.role = role

    async def __call__(
        self, request: Request, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> User:
        if bearer is not None:
            user = await token_user(request.app.state.pool, bearer.credentials)
            if user is None:
                raise HTTPException(401, "unknown, expired or revoked API token",
                                    headers={"WWW-Authenticate": "Bearer"})
        else:
            user = await session_user(request)
            if user is None:
                raise HTTPException(401, "sign in first", headers={"WWW-Authenticate": "Session"})
        if not user.can(self.role):
            raise HTTPException(403, f"needs the {self.role} role (you are {user.role})")
        if bearer is None and request.method not in ("GET", "HEAD"):
            sent = request.headers.get(CSRF_HEADER)
            if sent is None and request.headers.get("content-type", "").startswith(
                    ("application/x-www-form-urlencoded", "multipart/form-data")):
                sent = str((await request.form()).get("csrf_token", ""))
            if not csrf_ok(request, sent):
                raise HTTPException(403, "missing or wrong CSRF token")
        return user


viewer, operator, rule_editor, admin = (Requires(role) for role in ROLES)
AsViewer = Annotated[User, Depends(viewer)]
AsOperator = Annotated[User, Depends(operator)]
AsRuleEditor = Annotated[User, Depends(rule_editor)]
AsAdmin = Annotated[User, Depends(admin)]
