"""One log line per request: time, request id, method, route template, status, duration, user."""

from __future__ import annotations

import logging
import time

from quart import Quart, Response, g, request

from quart_tasks.logs import ACCESS_LOGGER

logger = logging.getLogger(ACCESS_LOGGER)


async def _start_clock() -> None:
    g.started = time.perf_counter()


def route_template() -> str:
    """The matched rule (`/api/tasks/<int:task_id>`), never the raw path: no ids, no query."""
    rule = request.url_rule
    return rule.rule if rule is not None else "<unmatched>"


async def _log_request(response: Response) -> Response:
    duration_ms = round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2)
    principal = g.get("principal")
    route = route_template()
    fields = {
        "request_id": g.get("request_id"),
        "method": request.method,
        "route": route,
        "status": response.status_code,
        "duration_ms": duration_ms,
        "user_id": principal.user_id if principal is not None else None,
    }
    if "trace_id" in g:  # set when tracing is on (`web.tracing`)
        fields["trace_id"] = g.trace_id
    logger.info(
        "%s %s %s %.1fms",
        request.method,
        route,
        response.status_code,
        duration_ms,
        extra=fields,
    )
    return response


def init_access_log(app: Quart) -> None:
    app.before_request(_start_clock)
    app.after_request(_log_request)
