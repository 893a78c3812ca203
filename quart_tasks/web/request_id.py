"""`X-Request-ID`: the client's when it is sane, a new UUID otherwise, on every response."""

from __future__ import annotations

import re
import uuid

from quart import Quart, Response, g, request

# Every hook here is `async def`: Quart runs a plain `def` hook on a thread,
# a hop per request that costs more than the hook itself.

HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._-]{1,128}")


async def _assign_request_id() -> None:
    offered = request.headers.get(HEADER, "")
    g.request_id = offered if _SANE.fullmatch(offered) else str(uuid.uuid4())


async def _echo_request_id(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id is None:  # the request failed before any before_request hook ran
        await _assign_request_id()
        request_id = g.request_id
    response.headers[HEADER] = request_id
    return response


def init_request_id(app: Quart) -> None:
    app.before_request(_assign_request_id)
    app.after_request(_echo_request_id)
