"""Access tokens: issuing, verifying, and the `require_auth` decorator."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import jwt
from quart import current_app, g, request
from quart_schema.openapi import QUART_SCHEMA_SECURITY_ATTRIBUTE

from .errors import unauthorized

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["iss", "sub", "iat", "exp", "jti"]
BEARER_SCHEME = "bearer"

V = TypeVar("V", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for."""

    subject: str
    token_id: str


def issue_access_token(subject: str) -> tuple[str, int]:
    """A signed access token for `subject` and its lifetime in seconds."""
    config = current_app.config
    lifetime: int = config["JWT_EXP_SECONDS"]
    now = int(time.time())
    claims = {
        "iss": config["JWT_ISSUER"],
        "sub": subject,
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, config["SECRET_KEY"], algorithm=ALGORITHM), lifetime


def verify_access_token(token: str) -> Principal:
    """The token's principal, or a 401 `APIError` saying why it is refused.

    The algorithm comes from the server, never from the token's header, so
    `alg: none` and algorithm-confusion tokens fail the signature check.
    """
    config = current_app.config
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            config["SECRET_KEY"],
            algorithms=[ALGORITHM],
            issuer=config["JWT_ISSUER"],
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise unauthorized("Token expired", invalid_token=True) from None
    except jwt.InvalidTokenError:
        raise unauthorized("Invalid token", invalid_token=True) from None
    subject, token_id = claims["sub"], claims["jti"]
    if not isinstance(token_id, str) or subject != config["API_USER"]:
        raise unauthorized("Invalid token", invalid_token=True)
    return Principal(subject=subject, token_id=token_id)


def bearer_token() -> str:
    """The token of the `Authorization: Bearer` header, or a 401."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("Missing Bearer token")
    return token


def current_principal() -> Principal:
    principal: Principal = g.principal
    return principal


def require_auth(view: V) -> V:
    """Mark a view as needing a valid bearer token, which `authenticate` checks."""
    setattr(view, QUART_SCHEMA_SECURITY_ATTRIBUTE, [{BEARER_SCHEME: []}])
    return view


def authenticate() -> None:
    """Verify the bearer token of a request whose view is marked by `require_auth`."""
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, QUART_SCHEMA_SECURITY_ATTRIBUTE, None):
        g.principal = verify_access_token(bearer_token())
