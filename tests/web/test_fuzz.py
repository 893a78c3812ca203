"""Schemathesis against the app's own /openapi.json, on the ASGI app in process.

Every operation gets valid and invalid (negative) requests, made as a logged-in
admin, and every answer must be no 5xx, a status the document declares for the
operation, a declared content type, and a body that matches the declared schema.
The budget is fixed and seeded: 300 examples per operation, half of them valid
and half invalid; `pytest tests/test_fuzz.py --fuzz-examples=3000` runs more.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.result import Err, Ok
from schemathesis.python import asgi

from quart_tasks import create_app
from quart_tasks.config import TestingConfig as Settings
from tests.helpers.apps import ADMIN, reset_schema, settings_for_test
from tests.helpers.servers import fresh_database_url
from tests.helpers.support import TEST_SECRET_KEY

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SEED = 20261124
SESSION_ENDING = {("POST", "/api/logout")}
"""Operations that end the caller's session get a session of their own."""


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp_path = tmp_path_factory.mktemp("fuzz")
    with fresh_database_url(tmp_path) as url:
        asyncio.run(reset_schema(url))
        config = settings_for_test(
            tmp_path,
            DATABASE_URL=url,
            LOGIN_FAILURES_PER_PAIR="100000/minute",
            LOGIN_FAILURES_PER_ADDRESS="100000/minute",
            LOGIN_FAILURES_PER_USERNAME="100000/minute",
        )
        app = create_app(config)
        SCHEMA.app = app  # requests go to it in process, through Schemathesis's ASGI client
        try:
            yield app
        finally:
            asgi.shutdown_lifespans()  # closes the app's pool before its database goes


def log_in(app: Any) -> dict[str, str]:
    with asgi.get_client(app) as client:
        answer = client.post("/api/login", json=ADMIN)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@pytest.fixture(scope="module")
def admin_auth(fuzzed_app: Any) -> dict[str, str]:
    headers = log_in(fuzzed_app)
    with asgi.get_client(fuzzed_app) as client:  # some tasks for the id routes to find
        for number in range(5):
            client.post("/api/tasks", json={"title": f"seed {number}"}, headers=headers)
        client.post(
            "/api/users",
            json={"username": f"fuzz-{uuid.uuid4().hex[:8]}", "password": "a long password"},
            headers=headers,
        )
    return headers


def openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document; building it touches no database."""
    app = create_app(Settings(DATABASE_URL="sqlite+aiosqlite://", SECRET_KEY=TEST_SECRET_KEY))

    async def fetch() -> dict[str, Any]:
        document: dict[str, Any] = await (await app.test_client().get("/openapi.json")).get_json()
        return document

    return asyncio.run(fetch())


STREAMS = {("GET", "/api/tasks/events"), ("GET", "/api/tasks/ws")}
"""Never-ending responses and a WebSocket: tests/test_live.py covers them instead."""

DOCUMENT = openapi_document()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)


def documented(result: Ok[Any] | Err[InvalidSchema]) -> tuple[str, str]:
    """An operation's method and path; a schema schemathesis cannot read fails the module."""
    if isinstance(result, Err):
        raise result.err()
    return result.ok().method.upper(), result.ok().path


OPERATIONS = [
    operation
    for operation in map(documented, SCHEMA.get_all_operations())
    if operation not in STREAMS
]


def takes_input(method: str, path: str) -> bool:
    """Whether the operation has anything a negative case could get wrong."""
    operation = DOCUMENT["paths"][path][method.lower()]
    return bool(operation.get("parameters") or operation.get("requestBody"))


CASES = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or takes_input(method, path)
]


@pytest.mark.parametrize(
    ("method", "path", "mode"), CASES, ids=[f"{m} {p}-{mode.value}" for m, p, mode in CASES]
)
def test_the_api_keeps_its_documented_contract(
    method: str,
    path: str,
    mode: GenerationMode,
    fuzzed_app: Any,
    admin_auth: dict[str, str],
    request: pytest.FixtureRequest,
) -> None:
    own_session = (method, path) in SESSION_ENDING

    @hypothesis_seed(SEED)
    @settings(
        max_examples=max(1, request.config.getoption("fuzz_examples") // len(GenerationMode)),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(case=SCHEMA[path][method].as_strategy(generation_mode=mode))
    def keeps_the_contract(case: schemathesis.Case[Any]) -> None:
        headers = log_in(fuzzed_app) if own_session else admin_auth
        case.call_and_validate(headers=headers, checks=CHECKS, app=fuzzed_app)

    keeps_the_contract()
