"""A query string must decode as UTF-8: werkzeug would quietly replace what does not."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from quart import request

from quart_tasks.web.errors import APIError


async def require_utf8_query() -> None:
    if not request.query_string:
        return
    try:
        unquote_to_bytes(request.query_string).decode("utf-8")
    except UnicodeDecodeError:
        raise APIError(
            400,
            "validation_error",
            "The query string is not valid UTF-8",
            details=[{"loc": ["query"], "message": "not valid UTF-8"}],
        ) from None
