"""Who is calling: the `authenticate` hooks, which enforce what each view declared.

A view marked `require_auth` (`web.access`), or not marked at all, runs only
for a valid access token of an existing user whose session is not revoked;
`require_admin` also needs the admin role; `optional_auth` lets anonymous
callers through with no principal, and `public` lets anyone through without a
look at the token. The hook runs before the body is read, so an anonymous
client learns nothing else first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from quart import current_app, g, request, websocket
from quart.wrappers import BaseRequestWebsocket

from quart_tasks.auth.models import Role, User
from quart_tasks.auth.sessions import session_user
from quart_tasks.auth.tokens import decode_access_token
from quart_tasks.services import services
from quart_tasks.storage.pool import first_in_line
from quart_tasks.storage.sessions import db_session
from quart_tasks.web.access import (
    QUERY_TOKEN_ATTRIBUTE,
    QUERY_TOKEN_PARAMETER,
    Access,
    required_access,
)
from quart_tasks.web.errors import APIError, unauthorized

POLICY_VIOLATION = 1008
"""The WebSocket close code for a refused caller."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, and the login session their token belongs to.

    Plain values copied when the token is checked: a later rollback in the
    request expires ORM objects, and must not turn reading these into I/O.
    """

    user_id: int
    username: str
    role: Role
    created_at: datetime
    family_id: str
    token_id: str

    @classmethod
    def of(cls, user: User, family_id: str, token_id: str) -> Principal:
        return cls(
            user_id=user.id,
            username=user.username,
            role="admin" if user.is_admin else "user",
            created_at=user.created_at,
            family_id=family_id,
            token_id=token_id,
        )

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer` header; None when there is no header."""
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("Authorization must be 'Bearer <token>'")
    return token


def query_token(args: Mapping[str, str]) -> str | None:
    token = args.get(QUERY_TOKEN_PARAMETER)
    if token is not None and not token:
        raise unauthorized(f"{QUERY_TOKEN_PARAMETER} is empty")
    return token


async def principal_for(token: str) -> Principal:
    """The caller that `token` stands for, or 401: bad token, ended session, removed user."""
    claims = decode_access_token(token)

    async def check() -> Principal | None:
        with first_in_line():  # requests of the same session may be waiting for it
            user = await session_user(db_session(), claims.user_id, claims.family_id)
        return None if user is None else Principal.of(user, claims.family_id, claims.token_id)

    known = await services().session_cache.value(claims.user_id, claims.family_id, check)
    if not isinstance(known, Principal):
        raise unauthorized("Session ended or user removed", invalid_token=True)
    return replace(known, token_id=claims.token_id)


async def authenticate() -> None:
    """Before each HTTP request: the caller its view requires (`web.access`), or 401/403."""
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or request.method == "OPTIONS":  # no route (404), or a preflight
        return
    access = required_access(view)
    if access == "public":
        return
    g.principal = None
    principal = await _caller(access, view, request)
    limit = services().api_rate_limit
    if principal is not None and limit is not None:
        await limit.spend(principal.user_id)


async def authenticate_websocket() -> str | None:
    """Before each WebSocket: as `authenticate`, but a refusal is the socket closed with 1008.

    A browser's WebSocket sees no status of a refused handshake; a close code
    and reason it does see. Returning a value ends the WebSocket there.
    """
    view = current_app.view_functions.get(websocket.endpoint or "")
    if view is None:
        return None
    access = required_access(view)
    if access == "public":
        return None
    g.principal = None
    try:
        await _caller(access, view, websocket)
    except APIError as error:
        await websocket.accept()
        await websocket.close(POLICY_VIOLATION, error.message[:120])
        return "refused"
    return None


async def _caller(access: Access, view: Any, asked: BaseRequestWebsocket) -> Principal | None:
    """The caller `access` needs, set as `g.principal`; None for an anonymous `optional` one."""
    token = bearer_token(asked.headers.get("Authorization"))
    if token is None and getattr(view, QUERY_TOKEN_ATTRIBUTE, False):
        token = query_token(asked.args)  # parsed only here: most requests have no query
    if token is None:
        if access == "optional":
            return None
        raise unauthorized("Missing Bearer token")
    principal = await principal_for(token)
    g.principal = principal
    if access == "admin" and not principal.is_admin:
        raise forbidden()
    return principal


def forbidden(message: str = "Only an admin may do this") -> APIError:
    return APIError(403, "forbidden", message)


def current_principal() -> Principal:
    principal: Principal | None = g.get("principal")
    if principal is None:
        raise RuntimeError("no authenticated caller: is the view marked require_auth?")
    return principal


def optional_principal() -> Principal | None:
    principal: Principal | None = g.get("principal")
    return principal
