"""Who may do what in the console: users with roles, argon2 password hashes, sessions in
signed cookies, CSRF tokens for every change.

Roles are ordered (citywatch.console.roles). Every route names the least role it needs;
nothing answers without one (except the login page, the health check and the webhooks that
carry their own signatures). Scripts use API tokens instead of sessions
(citywatch.console.tokens).
"""

from __future__ import annotations

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
from storage.people import find_user, update_hash

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
    "current_user",
    "hash_password",
    "log_in",
]
CSRF_HEADER = "X-CSRF-Token"
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password anybody has")


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise ValueError("a console password has at least 10 characters")
    return _hasher.hash(password)


async def authenticate(pool: asyncpg.Pool, username: str, password: str) -> User | None:
    """The user, when the password is right; the same work either way, so timing does not
    tell whether a name exists."""
    stored = await find_user(pool, username)
    try:
        _hasher.verify(stored.password_hash if stored else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if stored is None or stored.disabled:
        return None
    if _hasher.check_needs_rehash(stored.password_hash):
        await update_hash(pool, username, _hasher.hash(password))
    return User(stored.username, stored.role)  # type: ignore[arg-type]


def log_in(request: Request, user: User) -> None:
    request.session.clear()  # a fresh session: no fixation
    request.session.update({"user": user.name, "role": user.role, "csrf": secrets.token_urlsafe(32)})


def current_user(request: Request) -> User | None:
    name, role = request.session.get("user"), request.session.get("role")
    if not isinstance(name, str) or role not in ROLES:
        return None
    return User(name, role)


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
    """The signed-in user as the database has them now: a user disabled or demoted since
    signing in gets no more than their current role (one primary-key read per request)."""
    user = current_user(request)
    if user is None:
        return None
    stored = await find_user(request.app.state.pool, user.name)
    if stored is None or stored.disabled or stored.role not in ROLES:
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
