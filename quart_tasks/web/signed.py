"""Opaque, tamper-evident tokens: JSON, base64url, signed with an HMAC per purpose.

Signed with the current `SECRET_KEY`; any key on the ring verifies, so a key
rotation does not break the walks and syncs in progress. The purpose is part
of what is signed: a list cursor is never taken for a sync token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from quart_tasks.services import services


def _mac(secret: str, purpose: bytes, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), purpose + b"." + payload, hashlib.sha256).digest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(content: dict[str, Any], purpose: bytes) -> str:
    ring = services().key_ring
    payload = json.dumps(content, separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64(payload)}.{_b64(_mac(ring.keys[ring.signing_key_id], purpose, payload))}"


VERIFIED_KEPT = 4096
"""Verified tokens a process remembers (`KeyRing.verified`), the oldest forgotten first."""


def verify(token: str, purpose: bytes) -> dict[str, Any] | None:
    """The token's content, or None when it was not signed here for `purpose`, or was altered."""
    verified = services().key_ring.verified
    content = verified.get((purpose, token))
    if content is None:
        content = _check(token, purpose)
        if content is None:
            return None
        if len(verified) >= VERIFIED_KEPT:
            del verified[next(iter(verified))]
        verified[(purpose, token)] = content
    return dict(content)


def _check(token: str, purpose: bytes) -> dict[str, Any] | None:
    try:
        payload_part, mac_part = token.split(".")
        payload, mac = _unb64(payload_part), _unb64(mac_part)
    except ValueError:
        return None
    # Only the canonical spelling: unused low bits of the last base64 character
    # must not let one token be written several ways.
    if _b64(payload) != payload_part or _b64(mac) != mac_part:
        return None
    if not any(
        hmac.compare_digest(mac, _mac(secret, purpose, payload))
        for secret in services().key_ring.keys.values()
    ):
        return None
    try:
        content = json.loads(payload)
    except ValueError:
        return None
    return content if isinstance(content, dict) else None
