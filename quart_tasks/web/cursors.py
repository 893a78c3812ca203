"""Keyset cursors: signed tokens (`signed`) that hold where a walk stands."""

from __future__ import annotations

from typing import Any

from quart_tasks.web.errors import APIError
from quart_tasks.web.signed import sign, verify

PURPOSE = b"quart-tasks cursor"


class InvalidCursor(APIError):
    def __init__(self) -> None:
        super().__init__(
            400,
            "validation_error",
            "cursor: not a cursor this server issued for this sort order",
            details=[{"loc": ["cursor"], "message": "Invalid cursor"}],
        )


def encode_cursor(content: dict[str, Any]) -> str:
    return sign(content, PURPOSE)


def decode_cursor(cursor: str) -> dict[str, Any]:
    """The cursor's content, or 400 when it was not issued here or was altered."""
    content = verify(cursor, PURPOSE)
    if content is None:
        raise InvalidCursor()
    return content
