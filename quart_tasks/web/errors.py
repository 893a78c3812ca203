"""One error type, one JSON shape: `{"error": {"code", "message", "details"?}}`."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from quart import Quart, Response, current_app, g, jsonify
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from quart_tasks.storage.outages import UNAVAILABLE_TYPES, unavailable

logger = logging.getLogger(__name__)

# The code a client sees for each status werkzeug or Quart may raise on their own.
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable_entity",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


# werkzeug's own descriptions of these are written for browsers.
SHORT_MESSAGES = {
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
}


class ErrorDetail(BaseModel):
    loc: list[str | int]
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] | None = None


class ErrorResponse(BaseModel):
    """An error: see the code for what went wrong."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "validation_error",
                        "message": "Invalid request",
                        "details": [{"loc": ["body", "title"], "message": "Field required"}],
                    }
                }
            ]
        }
    )

    error: ErrorBody


class APIError(Exception):
    """An error a client should see, raised anywhere while handling a request."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = dict(headers or {})


def not_found(message: str = "Not found") -> APIError:
    return APIError(404, "not_found", message)


def unauthorized(message: str, *, invalid_token: bool = False) -> APIError:
    challenge = 'Bearer error="invalid_token"' if invalid_token else "Bearer"
    return APIError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


def error_body(error: APIError) -> dict[str, Any]:
    """The members of the one error shape's `error`."""
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details is not None:
        body["details"] = list(error.details)
    return body


def error_response(error: APIError) -> Response:
    response = jsonify({"error": error_body(error)})
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def validation_details(error: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(item["loc"]), "message": item["msg"]}
        for item in error.errors(include_url=False, include_context=False, include_input=False)
    ]


def _validation_message(details: list[dict[str, Any]]) -> str:
    first = details[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return f"{where}: {first['message']}{more}"


def validation_error(error: ValidationError) -> APIError:
    """400 `validation_error` for what pydantic refused, one detail per problem."""
    details = validation_details(error) or [{"loc": [], "message": "invalid input"}]
    return APIError(400, "validation_error", _validation_message(details), details=details)


async def handle_api_error(error: APIError) -> Response:
    return error_response(error)


async def handle_schema_validation_error(error: RequestSchemaValidationError) -> Response:
    cause = error.validation_error
    if isinstance(cause, ValidationError):
        return error_response(validation_error(cause))
    details = [{"loc": [], "message": str(cause)}]
    return error_response(
        APIError(400, "validation_error", _validation_message(details), details=details)
    )


async def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    headers = {}
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    code = STATUS_CODES.get(status, (error.name or "error").lower().replace(" ", "_"))
    message = SHORT_MESSAGES.get(status) or error.description or error.name or code
    return error_response(APIError(status, code, message, headers=headers))


def service_unavailable(retry_after: int) -> APIError:
    return APIError(
        503,
        "service_unavailable",
        "The database is unavailable; retry shortly",
        headers={"Retry-After": str(retry_after)},
    )


async def handle_unavailable(error: Exception) -> Response:
    """The database (or its pool) could not be reached: 503, and the write did not happen."""
    if not unavailable(error):
        return await handle_unexpected_error(error)
    logger.warning(
        "database unavailable (request id %s): %s",
        g.get("request_id", "-"),
        type(error).__name__,
        extra={"request_id": g.get("request_id")},
    )
    return error_response(service_unavailable(current_app.config["RETRY_AFTER_SECONDS"]))


async def handle_unexpected_error(error: Exception) -> Response:
    if unavailable(error):  # of a type no handler above names
        return await handle_unavailable(error)
    logger.error(
        "unhandled error (request id %s)",
        g.get("request_id", "-"),
        exc_info=error,
        extra={"request_id": g.get("request_id")},
    )
    return error_response(APIError(500, "internal_error", "An unexpected error occurred"))


def register_error_handlers(app: Quart) -> None:
    app.register_error_handler(APIError, handle_api_error)
    app.register_error_handler(RequestSchemaValidationError, handle_schema_validation_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    for error_type in UNAVAILABLE_TYPES:
        app.register_error_handler(error_type, handle_unavailable)
    app.register_error_handler(Exception, handle_unexpected_error)
