"""Cross-origin access for the origins in `CORS_ORIGINS` (none by default)."""

from __future__ import annotations

from quart import Quart
from quart_cors import cors

EXPOSED_HEADERS = ["ETag", "Location", "Link", "X-Request-ID", "Idempotent-Replayed", "Retry-After"]
ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
    "X-Request-ID",
]
ALLOWED_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def allowed_origins(setting: str) -> list[str]:
    return [origin.strip() for origin in setting.split(",") if origin.strip()]


def init_cors(app: Quart) -> None:
    origins = allowed_origins(app.config["CORS_ORIGINS"])
    if not origins:
        return
    cors(
        app,
        allow_origin=origins,
        allow_headers=ALLOWED_HEADERS,
        allow_methods=ALLOWED_METHODS,
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
    )
