"""Checks every request body before a view sees it.

Views that take a body declare a request model (quart-schema's
`validate_request`); for those the body must be `application/json` (415),
parse (400 `bad_request`) and be a JSON object (400 `bad_request`), so that
the model's own validation only ever reports field errors.
"""

from __future__ import annotations

import asyncio

from quart import Response, current_app, g, request
from quart_schema.validation import QUART_SCHEMA_REQUEST_ATTRIBUTE
from werkzeug.exceptions import BadRequest, HTTPException

from quart_tasks.web.errors import APIError

BODY_DRAIN_SECONDS = 1.0


async def limit_body_size() -> None:
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise APIError(413, "payload_too_large", f"Request body is larger than {limit} bytes")


async def require_json_object() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    if (
        view is None
        or request.method == "OPTIONS"
        or not hasattr(view, QUART_SCHEMA_REQUEST_ATTRIBUTE)
    ):
        return
    if not request.is_json:
        if request.mimetype or request.content_length:
            raise APIError(415, "unsupported_media_type", "Content-Type must be application/json")
        raise APIError(400, "bad_request", "A JSON object body is required")
    try:
        body = await request.get_json()  # cached: the view's validation reuses it
        g.body_read = True
    except (BadRequest, UnicodeDecodeError):
        raise APIError(400, "bad_request", "Request body is not valid UTF-8 JSON") from None
    except RecursionError:
        raise APIError(400, "bad_request", "Request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise APIError(400, "bad_request", "Request body must be a JSON object")


async def finish_reading_body(response: Response) -> Response:
    """Keep the connection usable after an answer given before the body was read.

    A 401 from the token check or a 503 from the database comes before the
    view reads the request body. Hypercorn then closes the connection after
    the response without saying so, and a client that sends its next request
    on it gets a reset. So the rest of the body is read here (it is bounded by
    MAX_CONTENT_LENGTH), or, when it is too large or does not come within
    `BODY_DRAIN_SECONDS`, the response says `Connection: close`.
    """
    if g.get("body_read") or (
        not request.content_length and "chunked" not in request.headers.get("Transfer-Encoding", "")
    ):
        return response
    close = (request.content_length or 0) > current_app.config["MAX_CONTENT_LENGTH"]
    if not close:
        try:
            async with asyncio.timeout(BODY_DRAIN_SECONDS):
                await request.get_data(cache=True)
        except (TimeoutError, HTTPException):  # slow, or a chunked body past the limit
            close = True
    if close:
        response.headers["Connection"] = "close"
    return response
