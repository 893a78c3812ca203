"""What a view needs of its caller, declared on the view: read by the auth hook and the docs.

These markers only declare; `auth.caller.authenticate` enforces them before
the view runs, and the OpenAPI document lists each route's security from them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from quart_schema.openapi import QUART_SCHEMA_SECURITY_ATTRIBUTE

BEARER_SCHEME = "bearer"
ACCESS_ATTRIBUTE = "_quart_tasks_access"
QUERY_TOKEN_ATTRIBUTE = "_quart_tasks_query_token"
QUERY_TOKEN_PARAMETER = "access_token"

Access = Literal["user", "admin", "optional"]
V = TypeVar("V", bound=Callable[..., Any])


def _mark(access: Access, security: list[dict[str, list[str]]]) -> Callable[[V], V]:
    def decorator(view: V) -> V:
        setattr(view, ACCESS_ATTRIBUTE, access)
        setattr(view, QUART_SCHEMA_SECURITY_ATTRIBUTE, security)
        return view

    return decorator


require_auth = _mark("user", [{BEARER_SCHEME: []}])
require_admin = _mark("admin", [{BEARER_SCHEME: []}])
optional_auth = _mark("optional", [{BEARER_SCHEME: []}, {}])


def view_access(view: Any) -> Access | None:
    access: Access | None = getattr(view, ACCESS_ATTRIBUTE, None)
    return access


def accepts_query_token(view: V) -> V:
    """Let the view's token come as `access_token` in the query string too.

    Only for streams that browsers open with EventSource or WebSocket, which
    cannot set an Authorization header. The access log never records queries.
    """
    setattr(view, QUERY_TOKEN_ATTRIBUTE, True)
    return view
