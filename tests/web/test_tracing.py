"""Tracing, when on: one trace per request, its statements as children, its id in the log."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from quart import Quart

from quart_tasks import create_app
from quart_tasks.logs import ACCESS_LOGGER
from quart_tasks.web.tracing import install_tracing, tracing_wanted
from tests.helpers.apps import ADMIN, bearer, reset_schema, settings_for_test
from tests.helpers.servers import CHECKOUT

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@contextlib.asynccontextmanager
async def traced_app(tmp_path: Path, exporter: InMemorySpanExporter) -> AsyncIterator[Quart]:
    config = settings_for_test(tmp_path)
    await reset_schema(config.DATABASE_URL)
    app = create_app(config)
    install_tracing(app, exporter)
    async with app.test_app():
        yield app


async def test_a_request_is_one_trace_with_its_statements_as_children(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    access = logging.getLogger(ACCESS_LOGGER)
    monkeypatch.setattr(access, "handlers", [*access.handlers, caplog.handler])
    async with traced_app(tmp_path, exporter) as app:
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        exporter.clear()
        caplog.clear()

        response = await client.get(
            "/api/tasks",
            query_string={"page_size": 5},
            headers={**auth, "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        )

    assert response.status_code == 200
    spans = [
        s for s in exporter.get_finished_spans() if format(s.context.trace_id, "032x") == TRACE_ID
    ]
    (server,) = [s for s in spans if s.kind == SpanKind.SERVER]
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == PARENT_ID
    assert server.name == "GET /api/tasks"
    statements = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert statements, "the list's statements are traced"
    assert all(
        s.parent is not None and s.parent.span_id == server.context.span_id for s in statements
    )
    assert any("SELECT" in s.name or "SELECT" in str(s.attributes) for s in statements)
    # By id: the record reaches caplog's handler once or twice, as the logger propagates.
    lines = {id(r): r for r in caplog.records if r.name == ACCESS_LOGGER}
    (line,) = [r for r in lines.values() if "/api/tasks" in r.getMessage()]
    assert line.trace_id == TRACE_ID  # type: ignore[attr-defined]
    assert line.request_id  # type: ignore[attr-defined]


async def test_without_a_traceparent_a_request_starts_its_own_trace(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    async with traced_app(tmp_path, exporter) as app:
        response = await app.test_client().get("/healthz")

    assert response.status_code == 200
    (server,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert server.parent is None
    assert server.name == "GET /healthz"


def test_tracing_is_on_only_with_an_otlp_endpoint() -> None:
    assert not tracing_wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": ""})
    assert tracing_wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing_wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})


def test_off_nothing_of_opentelemetry_is_imported(tmp_path: Path) -> None:
    script = (
        "import sys; from quart_tasks import create_app; create_app(); "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=CHECKOUT,
        env={"APP_ENV": "testing", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"
