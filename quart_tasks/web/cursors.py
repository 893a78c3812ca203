"""Opaque, tamper-evident keyset cursors: JSON, base64url, signed with an HMAC.

Signed with the current `SECRET_KEY`; any key on the ring verifies, so a key
rotation does not break walks in progress.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from quart_tasks.services import services
from quart_tasks.web.errors import APIError

PURPOSE = b"quart-tasks cursor"


class InvalidCursor(APIError):
    def __init__(self) -> None:
        super().__init__(
            400,
            "validation_error",
            "cursor: not a cursor this server issued for this sort order",
            details=[{"loc": ["cursor"], "message": "Invalid cursor"}],
        )


def _mac(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), PURPOSE + b"." + payload, hashlib.sha256).digest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(content: dict[str, Any]) -> str:
    ring = services().key_ring
    payload = json.dumps(content, separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64(payload)}.{_b64(_mac(ring.keys[ring.signing_key_id], payload))}"


def decode_cursor(cursor: str) -> dict[str, Any]:
    """The cursor's content, or 400 when it was not issued here or was altered."""
    try:
        payload_part, mac_part = cursor.split(".")
        payload, mac = _unb64(payload_part), _unb64(mac_part)
    except ValueError:
        raise InvalidCursor() from None
    # Only the canonical spelling: unused low bits of the last base64 character
    # must not let one cursor be written several ways.
    if _b64(payload) != payload_part or _b64(mac) != mac_part:
        raise InvalidCursor()
    if not any(
        hmac.compare_digest(mac, _mac(secret, payload))
        for secret in services().key_ring.keys.values()
    ):
        raise InvalidCursor()
    try:
        content = json.loads(payload)
    except ValueError:
        raise InvalidCursor() from None
    if not isinstance(content, dict):
        raise InvalidCursor()
    return content
