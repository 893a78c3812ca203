"""What the OpenAPI document defines once and references everywhere: body schemas, error
responses and common headers.

Client generators name a model after each inline schema they meet, so the same error
body inlined under every route became a model per route (or, with one title, a clash
that made openapi-python-client drop the responses). Every body is a named schema in
`components/schemas`, every error answer a `components/responses` entry, and the
headers that many answers carry a `components/headers` entry.
"""

from __future__ import annotations

from typing import Any

ERROR_RESPONSES = {
    400: ("BadRequest", "The request is malformed or fails validation."),
    401: ("Unauthorized", "No valid access token (or a wrong password at login)."),
    403: ("Forbidden", "The caller may not do this."),
    404: ("NotFound", "No such resource, or not the caller's."),
    409: ("Conflict", "A request with the same Idempotency-Key is still being served."),
    410: ("Gone", "What the request resumes from is no longer kept."),
    412: ("PreconditionFailed", "If-Match no longer matches: the ETag header has the current one."),
    413: ("ContentTooLarge", "The body is larger than the server accepts."),
    415: ("UnsupportedMediaType", "The body is not JSON."),
    422: ("UnprocessableContent", "The Idempotency-Key was used with another request."),
    429: ("TooManyRequests", "Too many requests or failed logins: retry after Retry-After."),
    500: ("InternalServerError", "An unexpected fault; nothing was changed."),
    503: ("ServiceUnavailable", "The database is unavailable: retry after Retry-After."),
}
RETRY_AFTER_STATUSES = frozenset({429, 503})

HEADERS: dict[str, dict[str, Any]] = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimit-Limit": {
        "description": "Requests allowed per window, when the server sets RATE_LIMIT.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimit-Remaining": {
        "description": "Requests left in the current window.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimit-Reset": {
        "description": "Seconds until the window starts again.",
        "schema": {"type": "integer", "minimum": 0},
    },
}
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
HEADER_NAMES = {"etag": "ETag"}
"""Header names as they are written, where title case would get them wrong."""


def header_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def error_response_ref(status: int) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{ERROR_RESPONSES[status][0]}"}


def error_responses(error_schema_ref: dict[str, str]) -> dict[str, Any]:
    """`components/responses`: one entry per error status, each an `ErrorResponse`."""
    responses = {}
    for status, (name, description) in ERROR_RESPONSES.items():
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": error_schema_ref}},
        }
        if status in RETRY_AFTER_STATUSES:
            response["headers"] = {"Retry-After": header_ref("Retry-After")}
        if status == 429:
            response["headers"] |= {name: header_ref(name) for name in RATE_LIMIT_HEADERS}
        responses[name] = response
    return responses


def hoisted(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """A model's schema moved into `definitions` under its title; the reference to it.

    Two different schemas under one title would make one of them silently wrong in
    every client: refused here, when the document is built."""
    title = schema.get("title")
    if title is None:
        return schema
    known = definitions.get(title)
    if known is not None and known != schema:
        raise ValueError(f"two different schemas are titled {title!r}")
    definitions[title] = schema
    return {"$ref": f"#/components/schemas/{title}"}


def documented_header(name: str, schema: dict[str, Any], required: bool) -> tuple[str, Any]:
    """A response header as quart-schema gives it (lower case, its description inside its
    schema, `null` allowed when optional) as OpenAPI has it: written as sent, described
    beside its schema, and absent rather than null when optional."""
    schema = dict(schema)
    description = schema.pop("description", None)
    schema.pop("title", None)
    schema.pop("default", None)
    variants = [variant for variant in schema.pop("anyOf", []) if variant.get("type") != "null"]
    if len(variants) == 1:
        schema |= variants[0]
    header: dict[str, Any] = {"schema": schema, "required": required}
    if description:
        header["description"] = description
    written = HEADER_NAMES.get(name) or "-".join(part.capitalize() for part in name.split("-"))
    return written, header


def without_null_defaults(schema: dict[str, Any]) -> None:
    """A response schema's `"default": null`s dropped: the field is left out when it has
    no value, and a generator that reads a default as "always there" (openapi-typescript)
    would type it as required."""
    for field in schema.get("properties", {}).values():
        if "default" in field and field["default"] is None:
            del field["default"]
