"""The app's signing keys: `SECRET_KEY` signs, and it or any of `SECRET_KEY_FALLBACKS` verifies.

Access tokens (`auth.tokens`) and list cursors (`web.cursors`) are both signed
with them, so a key rolled out for one is rolled out for both.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def key_id(secret: str) -> str:
    return hmac.new(secret.encode(), b"quart-tasks signing key", hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class KeyRing:
    signing_key_id: str
    keys: Mapping[str, str]  # kid -> secret
    verified: dict[tuple[bytes, str], dict[str, Any]] = field(
        default_factory=dict, compare=False, repr=False
    )
    """Signed tokens (`web.signed`) this ring has verified, by purpose and token: a client
    polling with one token is not checked again each time. Bounded by `signed`."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> KeyRing:
        current: str = config["SECRET_KEY"]
        fallbacks = [
            key.strip() for key in config["SECRET_KEY_FALLBACKS"].split(",") if key.strip()
        ]
        keys = {key_id(secret): secret for secret in [*fallbacks, current]}
        return cls(signing_key_id=key_id(current), keys=keys)
