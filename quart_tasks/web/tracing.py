"""Optional tracing with OpenTelemetry: a span per request, and one per SQL statement.

On when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is
set, exported over OTLP by the SDK's exporter, which reads the standard `OTEL_*`
variables itself: endpoint, headers, `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`
by default, or `grpc`); the service name is `OTEL_SERVICE_NAME` (`quart-tasks`
by default) and the sampler `OTEL_TRACES_SAMPLER`. Off, nothing of OpenTelemetry
is imported, so it costs nothing (the `tracing` extra need not be installed).

- The request's span comes from the SDK's ASGI middleware, which takes a W3C
  `traceparent` as its parent; it is named by the route template, not the path.
- Statements are traced by the SDK's asyncpg instrumentation on PostgreSQL (the
  session's statements and the direct asyncpg path alike), and by its SQLAlchemy
  instrumentation on SQLite. A statement run for one request is its span's child;
  those that serve several requests at once (gathered reads and group creates, the shared
  bounds read, the event rounds) are spans of their own.
- The access log line carries `trace_id` beside `request_id`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from quart import Quart, g, request

from quart_tasks.services import services_of
from quart_tasks.storage.dialects import is_postgresql
from quart_tasks.web.access_log import route_template

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

SERVICE_NAME = "quart-tasks"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def tracing_wanted(config: Mapping[str, Any]) -> bool:
    return any(config.get(name) for name in ENDPOINT_VARIABLES)


def install_tracing(app: Quart, exporter: SpanExporter | None = None) -> None:
    """Trace `app`'s requests and statements, exported by `exporter` (OTLP by default)."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    provider = TracerProvider(
        resource=Resource.create({} if named else {"service.name": SERVICE_NAME})
    )
    if exporter is None:
        provider.add_span_processor(BatchSpanProcessor(_otlp_exporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    app.asgi_app = OpenTelemetryMiddleware(  # type: ignore[assignment,method-assign]
        app.asgi_app, tracer_provider=provider, exclude_spans=["receive", "send"]
    )
    app.before_request(_name_span_by_route)

    postgresql = is_postgresql(app.config["DATABASE_URL"])
    asyncpg_statements = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    sqlalchemy_statements = SQLAlchemyInstrumentor()

    async def instrument_statements() -> None:  # after start-up: the engine exists then
        if postgresql:
            asyncpg_statements.instrument(tracer_provider=provider)
        else:
            engine = services_of(app).database.engine
            assert engine is not None
            # The instrumentation names SQLAlchemy < 2.1 as what it supports, and 2.1's
            # cursor events, all it hooks, are the same; tests/web/test_tracing.py checks.
            sqlalchemy_statements.instrument(
                engine=engine.sync_engine, tracer_provider=provider, skip_dep_check=True
            )

    async def stop_tracing() -> None:
        if postgresql:
            asyncpg_statements.uninstrument()
        else:
            sqlalchemy_statements.uninstrument()
        provider.shutdown()  # exports what is left

    app.before_serving(instrument_statements)
    app.after_serving(stop_tracing)


def _otlp_exporter() -> SpanExporter:
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
            OTLPSpanExporter,
        )
    return OTLPSpanExporter()


async def _name_span_by_route() -> None:
    """The span is named by the route template, so that spans of one route group
    together; the trace id goes to the access log."""
    from opentelemetry import trace

    span = trace.get_current_span()
    context = span.get_span_context()
    if not context.is_valid:
        return
    route = route_template()
    span.update_name(f"{request.method} {route}")
    span.set_attribute("http.route", route)
    g.trace_id = format(context.trace_id, "032x")
