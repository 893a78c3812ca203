"""Access tokens: HS256 JWTs signed with the current key and checked against every listed key.

Each key is named in the token's `kid` header by a fingerprint of the secret, so
rolling a new `SECRET_KEY` out while the old one stays in `SECRET_KEY_FALLBACKS`
logs nobody out, and removing the old one retires its tokens.

A token that passed every check is remembered in its process until it expires,
so a client's next requests skip the signature and claims work; its expiry is
still checked on every use. Keys only change with a restart, which empties the
memory. Whether its session still stands is asked separately (`session_cache`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from quart import current_app

from quart_tasks.services import services
from quart_tasks.storage.ids import MAX_BIG_ID
from quart_tasks.web.errors import unauthorized

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["iss", "sub", "iat", "exp", "jti", "fam"]


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    family_id: str
    token_id: str
    expires_at: int


MAX_VERIFIED_TOKENS = 10_000


class VerifiedTokens:
    """Tokens that passed verification, by their exact text, oldest dropped first."""

    def __init__(self, max_entries: int = MAX_VERIFIED_TOKENS) -> None:
        self.max_entries = max_entries
        self._claims: dict[str, AccessClaims] = {}

    def get(self, token: str) -> AccessClaims | None:
        return self._claims.get(token)

    def put(self, token: str, claims: AccessClaims) -> None:
        if len(self._claims) >= self.max_entries:
            del self._claims[next(iter(self._claims))]
        self._claims[token] = claims

    def forget(self, token: str) -> None:
        self._claims.pop(token, None)


def issue_access_token(user_id: int, role: str, family_id: str) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds."""
    config = current_app.config
    ring = services().key_ring
    lifetime: int = config["JWT_EXP_SECONDS"]
    now = int(time.time())
    claims = {
        "iss": config["JWT_ISSUER"],
        "sub": str(user_id),
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
        "fam": family_id,
        "role": role,
    }
    token = jwt.encode(
        claims,
        ring.keys[ring.signing_key_id],
        algorithm=ALGORITHM,
        headers={"kid": ring.signing_key_id},
    )
    return token, lifetime


def decode_access_token(token: str) -> AccessClaims:
    """The token's claims, or a 401 `APIError` saying why it is refused."""
    verified = services().verified_tokens
    claims = verified.get(token)
    if claims is None:
        claims = _verify(token)
        verified.put(token, claims)
    if claims.expires_at <= time.time():  # as PyJWT decides it, with no leeway
        verified.forget(token)
        raise unauthorized("Token expired", invalid_token=True)
    return claims


def _verify(token: str) -> AccessClaims:
    """Check the signature and the claims.

    The algorithm comes from the server, never from the token, so `alg: none`
    and algorithm-confusion tokens fail; so does any `kid` not on the ring.
    """
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        secret = services().key_ring.keys.get(kid) if isinstance(kid, str) else None
        if secret is None:
            raise jwt.InvalidKeyError("unknown key id")
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=current_app.config["JWT_ISSUER"],
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise unauthorized("Token expired", invalid_token=True) from None
    except jwt.PyJWTError:
        raise unauthorized("Invalid token", invalid_token=True) from None
    subject, family_id, token_id = claims["sub"], claims["fam"], claims["jti"]
    if not (
        isinstance(subject, str)
        and subject.isascii()
        and subject.isdigit()
        and int(subject) <= MAX_BIG_ID
        and isinstance(family_id, str)
        and isinstance(token_id, str)
    ):
        raise unauthorized("Invalid token", invalid_token=True)
    return AccessClaims(
        user_id=int(subject),
        family_id=family_id,
        token_id=token_id,
        expires_at=int(claims["exp"]),
    )
