"""`/healthz`, `/readyz` and `/metrics`: for load balancers and Prometheus. The first two
are in the OpenAPI document (tag `ops`); `/metrics`, Prometheus text, is not."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Quart, Response, current_app, jsonify
from quart_schema import document_response, hide
from sqlalchemy import text

from quart_tasks.services import services
from quart_tasks.serving.lifecycle import on_draining
from quart_tasks.web.access import public
from quart_tasks.web.errors import not_found
from quart_tasks.web.metrics import render_metrics
from quart_tasks.web.openapi import operation_id

logger = logging.getLogger(__name__)
ops = Blueprint("ops", __name__)
DRAINING = "quart_tasks.draining"
"""In `app.extensions`: True once the worker is told to stop."""
_FORGET = "quart_tasks.forget_draining"


async def watch_draining(app: Quart) -> None:
    """From the moment the worker is told to stop, `/readyz` answers 503."""
    app.extensions[DRAINING] = False

    def draining() -> None:
        app.extensions[DRAINING] = True

    app.extensions[_FORGET] = on_draining(draining)


async def stop_watching_draining(app: Quart) -> None:
    forget = app.extensions.pop(_FORGET, None)
    if forget is not None:
        forget()


class Health(BaseModel):
    """The process answers."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"]


class Readiness(BaseModel):
    """Whether this instance should get traffic, and what was checked."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "ok", "checks": {"database": "ok", "redis": "ok"}},
                {
                    "status": "degraded",
                    "checks": {"database": "ok", "redis": "failing"},
                    "degraded": ["redis"],
                },
            ]
        }
    )

    status: Literal["ok", "degraded", "unavailable", "shutting_down"]
    checks: dict[str, Literal["ok", "failing"]]
    degraded: list[str] | None = Field(
        default=None, description="What fails without making the instance unready."
    )


@ops.get("/healthz")
@operation_id("checkLiveness")
@public
@document_response(Health, 200)
async def healthz() -> Response:
    """The process runs and answers; touches nothing else."""
    return jsonify({"status": "ok"})


@ops.get("/readyz")
@operation_id("checkReadiness")
@public
@document_response(Readiness, 200)
@document_response(Readiness, 503)
async def readyz() -> Response:
    """Ready while the database answers within `READY_TIMEOUT`, until the worker is told
    to stop.

    Redis (when configured) is checked too, but only named when it fails
    (`"status": "degraded"`): without it the rate limits count per process, and
    an instance that can serve stays in its balancer's rotation.
    """
    if current_app.extensions.get(DRAINING):
        response = jsonify({"status": "shutting_down", "checks": {}})
        response.status_code = 503
        return response
    timeout = current_app.config["READY_TIMEOUT"]
    checks = {"database": await _passes(_database_answers(), within=timeout)}
    if current_app.config["REDIS_URL"]:
        checks["redis"] = await _passes(services().rate_limit_storage.check(), within=timeout)
    ready = checks["database"]
    degraded = sorted(name for name, passed in checks.items() if not passed and name != "database")
    body: dict[str, object] = {
        "status": "unavailable" if not ready else "degraded" if degraded else "ok",
        "checks": {name: "ok" if passed else "failing" for name, passed in checks.items()},
    }
    if degraded:
        body["degraded"] = degraded
    response = jsonify(body)
    if not ready:
        response.status_code = 503
        response.headers["Retry-After"] = str(current_app.config["RETRY_AFTER_SECONDS"])
    return response


async def _database_answers() -> bool:
    engine = services().database.engine
    if engine is None:
        return False
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return True


async def _passes(check: Awaitable[bool], *, within: float) -> bool:
    try:
        async with asyncio.timeout(within):
            return bool(await check)
    except Exception:
        logger.warning("readiness check failed", exc_info=True)
        return False


@ops.get("/metrics")
@public
@hide
async def metrics() -> Response:
    """Prometheus text, when `METRICS_ENABLED`."""
    if not current_app.config["METRICS_ENABLED"]:
        raise not_found()
    body, content_type = render_metrics()
    return Response(body, content_type=content_type)
