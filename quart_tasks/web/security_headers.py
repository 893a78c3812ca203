"""Security headers on every response; a strict policy everywhere but the docs page."""

from __future__ import annotations

from quart import Quart, Response, request

API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
# Swagger UI runs an inline script and styles, from the app's own assets only.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"
)
DOCS_PATHS = ("/docs",)


async def _secure(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    docs = request.path in DOCS_PATHS
    response.headers["Content-Security-Policy"] = DOCS_POLICY if docs else API_POLICY
    return response


def init_security_headers(app: Quart) -> None:
    app.after_request(_secure)
