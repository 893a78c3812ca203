"""Prometheus metrics: requests and latency by route template, in-flight requests, pool use,
event-stream subscribers.

With several Hypercorn workers, `quart-tasks serve` points every worker at one
`PROMETHEUS_MULTIPROC_DIR`, and a scrape of any worker reads all of them
(prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from quart import Quart, Response, g, request
from sqlalchemy.pool import QueuePool

from quart_tasks.services import services
from quart_tasks.web.access_log import route_template

LABELS = ["route", "method", "status"]
REQUESTS = Counter("quart_tasks_http_requests", "HTTP requests answered.", LABELS)
LATENCY = Histogram(
    "quart_tasks_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
IN_FLIGHT = Gauge(
    "quart_tasks_http_requests_in_flight",
    "HTTP requests being answered.",
    multiprocess_mode="livesum",
)
POOL_CHECKED_OUT = Gauge(
    "quart_tasks_db_pool_checked_out", "Database connections in use.", multiprocess_mode="livesum"
)
POOL_OVERFLOW = Gauge(
    "quart_tasks_db_pool_overflow",
    "Connections open beyond the pool size.",
    multiprocess_mode="livesum",
)
LIVE_SUBSCRIBERS = Gauge(
    "quart_tasks_live_subscribers",
    "Event-stream subscribers, by how their events reach them: written by the broker straight "
    "to their connections (direct), or through their stream's queue (queued).",
    ["delivery"],
    multiprocess_mode="livesum",
)
RATE_LIMITS_LOCAL = Gauge(
    "quart_tasks_rate_limits_local",
    "Processes counting rate limits on their own, their shared counters (Redis) unreachable.",
    multiprocess_mode="livesum",
)
RATE_LIMIT_FALLBACKS = Counter(
    "quart_tasks_rate_limit_fallbacks",
    "Times a process lost its shared rate-limit counters and began counting on its own.",
)


def render_metrics() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


async def _enter() -> None:
    IN_FLIGHT.inc()
    g.metrics_in_flight = True
    g.metrics_started = time.perf_counter()


async def _observe(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    if started is not None:
        labels = (route_template(), request.method, str(response.status_code))
        REQUESTS.labels(*labels).inc()
        LATENCY.labels(*labels).observe(time.perf_counter() - started)
    engine = services().database.engine
    pool = engine.pool if engine is not None else None
    if isinstance(pool, QueuePool):  # SQLite's in-memory StaticPool has no counts
        POOL_CHECKED_OUT.set(pool.checkedout())
        POOL_OVERFLOW.set(max(0, pool.overflow()))
    return response


async def _leave(_exc: BaseException | None) -> None:
    if g.pop("metrics_in_flight", False):
        IN_FLIGHT.dec()


def init_metrics(app: Quart) -> None:
    if not app.config["METRICS_ENABLED"]:
        return
    app.before_request(_enter)
    app.after_request(_observe)
    app.teardown_request(_leave)
