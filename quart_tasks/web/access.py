"""What a view needs of its caller, declared on the view: read by the auth hook and the docs.

These markers only declare; `auth.caller.authenticate` enforces them before
the view runs, and the OpenAPI document lists each route's security from them.
Access is denied by default: a view that declares nothing needs a signed-in
caller, as `require_auth` does, and only one marked `public` is open to all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from quart import Quart
from quart_schema.openapi import QUART_SCHEMA_SECURITY_ATTRIBUTE

BEARER_SCHEME = "bearer"
ACCESS_ATTRIBUTE = "_quart_tasks_access"
QUERY_TOKEN_ATTRIBUTE = "_quart_tasks_query_token"
QUERY_TOKEN_PARAMETER = "access_token"

Access = Literal["public", "user", "admin", "optional"]
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


def public(view: V) -> V:
    """Open to anyone, with or without a token: health, docs, login, refresh."""
    setattr(view, ACCESS_ATTRIBUTE, "public")
    return view


def view_access(view: Any) -> Access | None:
    """What the view declared, or None when it declared nothing."""
    access: Access | None = getattr(view, ACCESS_ATTRIBUTE, None)
    return access


def required_access(view: Any) -> Access:
    """What the view's caller must be: as declared, or signed in when nothing is."""
    return view_access(view) or "user"


def make_public(app: Quart, *endpoints: str) -> None:
    """Mark `endpoints` public where their views are not ours to decorate (an extension's)."""
    for endpoint in endpoints:
        view = app.view_functions[endpoint]

        @functools.wraps(view)
        async def public_view(*args: Any, _view: Any = view, **kwargs: Any) -> Any:
            return await _view(*args, **kwargs)

        app.view_functions[endpoint] = public(public_view)


def accepts_query_token(view: V) -> V:
    """Let the view's token come as `access_token` in the query string too.

    Only for streams that browsers open with EventSource or WebSocket, which
    cannot set an Authorization header. The access log never records queries.
    """
    setattr(view, QUERY_TOKEN_ATTRIBUTE, True)
    return view
