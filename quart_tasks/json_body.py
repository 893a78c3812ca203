"""Checks every request body before a view sees it.

Views that take a body declare a request model (quart-schema's
`validate_request`); for those the body must be `application/json` (415),
parse (400 `bad_request`) and be a JSON object (400 `bad_request`), so that
the model's own validation only ever reports field errors.
"""

from __future__ import annotations

from quart import current_app, request
from quart_schema.validation import QUART_SCHEMA_REQUEST_ATTRIBUTE
from werkzeug.exceptions import BadRequest

from .errors import APIError


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
    except (BadRequest, UnicodeDecodeError):
        raise APIError(400, "bad_request", "Request body is not valid UTF-8 JSON") from None
    except RecursionError:
        raise APIError(400, "bad_request", "Request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise APIError(400, "bad_request", "Request body must be a JSON object")
