"""Swagger UI's assets, served from the flask-swagger-ui package so `/docs` needs no internet."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from quart import Blueprint, Response, send_from_directory
from quart_schema import hide

from quart_tasks.web.access import public
from quart_tasks.web.errors import not_found


def _swagger_dist() -> Path:
    spec = find_spec("flask_swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("flask-swagger-ui is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "dist"


SWAGGER_DIST = _swagger_dist()
ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"})

docs = Blueprint("docs", __name__)


@docs.get("/docs/assets/<name>")
@public
@hide
async def swagger_asset(name: str) -> Response:
    if name not in ASSETS:
        raise not_found("No such asset")
    return await send_from_directory(SWAGGER_DIST, name, cache_timeout=86400)
