"""JSON responses built straight from pydantic models, or from JSON written already."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel
from quart import Response


def json_response(
    model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        model.model_dump_json(),
        status=status,
        headers=dict(headers or {}),
        content_type="application/json",
    )


def json_text_response(
    text: str, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A response of JSON written already."""
    return Response(
        text, status=status, headers=dict(headers or {}), content_type="application/json"
    )


def no_content(headers: Mapping[str, str] | None = None) -> Response:
    response = Response(b"", status=204, headers=dict(headers or {}))
    del response.headers["Content-Type"]
    return response
