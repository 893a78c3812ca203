"""Every failure is the JSON error shape; every response carries `X-Request-ID`."""

from __future__ import annotations

import errno
import logging
import socket
import uuid

import asyncpg
import pytest
from quart import Quart
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

from quart_tasks.storage.outages import unavailable
from quart_tasks.web.access import public
from tests.helpers.support import Client


async def test_an_unknown_route_is_json_404(client: Client) -> None:
    response = await client.get("/api/nothing-here")

    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert (await response.get_json())["error"]["code"] == "not_found"


async def test_a_wrong_method_is_405_with_allow(client: Client) -> None:
    response = await client.delete("/api/tasks")

    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}
    assert (await response.get_json())["error"]["code"] == "method_not_allowed"


@pytest.fixture
def failing_app(app: Quart) -> Quart:
    async def explode() -> str:
        raise RuntimeError("secret internals: password=hunter2")

    app.add_url_rule("/explode", "explode", public(explode))
    return app


async def test_an_unexpected_error_is_a_bare_500_logged_with_the_request_id(
    failing_app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("quart_tasks")
    logger.addHandler(caplog.handler)
    try:
        response = await failing_app.test_client().get(
            "/explode", headers={"X-Request-ID": "req-42"}
        )
    finally:
        logger.removeHandler(caplog.handler)

    assert response.status_code == 500
    assert await response.get_json() == {
        "error": {"code": "internal_error", "message": "An unexpected error occurred"}
    }
    assert response.headers["X-Request-ID"] == "req-42"
    [record] = [r for r in caplog.records if r.exc_info]
    assert "req-42" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError


@pytest.mark.parametrize("request_id", ["abc-123", "A.b_c-9", "x" * 128])
async def test_a_sane_request_id_is_echoed(client: Client, request_id: str) -> None:
    response = await client.get("/api/tasks", headers={"X-Request-ID": request_id})

    assert response.headers["X-Request-ID"] == request_id


@pytest.mark.parametrize("request_id", ["", "x" * 129, "has space", "semi;colon", "ünï"])
async def test_an_insane_request_id_is_replaced_by_a_uuid(client: Client, request_id: str) -> None:
    response = await client.get("/api/tasks", headers={"X-Request-ID": request_id})

    assert uuid.UUID(response.headers["X-Request-ID"])


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/tasks"), ("GET", "/nowhere"), ("PUT", "/api/login"), ("GET", "/openapi.json")],
)
async def test_every_response_has_a_request_id(client: Client, method: str, path: str) -> None:
    response = await client.open(path, method=method)  # type: ignore[call-arg]  # json has a default

    assert uuid.UUID(response.headers["X-Request-ID"])


async def test_request_ids_differ_between_requests(client: Client) -> None:
    first = await client.get("/api/tasks")
    second = await client.get("/api/tasks")

    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


class DriverError(Exception):
    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


OUTAGE_SQLSTATES = [
    ("57P03", True),  # the database system is shutting down / starting up
    ("57P01", True),  # terminating connection due to administrator command
    ("57P02", True),  # crash shutdown
    ("57P04", True),  # database dropped
    ("08006", True),  # connection failure
    ("53300", True),  # too many connections
    ("25006", True),  # read-only transaction: a write to a standby after a failover
    ("42P01", False),  # undefined table: a bug, not an outage
    ("22P02", False),  # invalid text representation
    ("23505", False),  # unique violation
    (None, False),
]


@pytest.mark.parametrize(("sqlstate", "expected"), OUTAGE_SQLSTATES)
def test_only_outage_sqlstates_make_a_plain_driver_error_a_503(
    sqlstate: str | None, expected: bool
) -> None:
    error = DBAPIError("SELECT 1", None, DriverError("boom", sqlstate))
    assert unavailable(error) is expected


@pytest.mark.parametrize(("sqlstate", "expected"), OUTAGE_SQLSTATES)
def test_asyncpgs_own_errors_are_judged_by_the_same_sqlstates(
    sqlstate: str | None, expected: bool
) -> None:
    """The asyncpg path raises these unwrapped (a new connection refused, for one)."""
    error_type = asyncpg.PostgresError
    if sqlstate is not None:
        error_type = asyncpg.PostgresError.get_message_class_for_sqlstate(sqlstate)
    assert unavailable(error_type("boom")) is expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (asyncpg.CannotConnectNowError("the database system is shutting down"), True),
        (asyncpg.ConnectionDoesNotExistError("connection was closed"), True),
        (asyncpg.InterfaceError("another operation is in progress"), True),
        (ConnectionRefusedError(111, "refused"), True),
        (ConnectionResetError(104, "reset"), True),
        (TimeoutError(), True),
        (socket.gaierror(-2, "Name or service not known"), True),
        (OSError(errno.EHOSTUNREACH, "No route to host"), True),
        (SQLAlchemyTimeoutError("QueuePool limit reached"), True),
        (FileNotFoundError(2, "No such file"), False),
        (asyncpg.UniqueViolationError("duplicate key"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_connection_and_pool_errors_are_unavailable_other_faults_are_not(
    error: BaseException, expected: bool
) -> None:
    assert unavailable(error) is expected


def test_an_adapted_error_is_judged_by_what_it_adapts() -> None:
    """The pool raises the dialect's adaptation of asyncpg's error, unwrapped, when it
    cannot open a connection; its cause is asyncpg's own."""
    refused = Exception("the database system is shutting down")
    refused.__cause__ = asyncpg.CannotConnectNowError("the database system is shutting down")
    bug = Exception("boom")
    bug.__cause__ = ValueError("boom")

    assert unavailable(refused)
    assert not unavailable(bug)
    assert not unavailable(Exception("no cause"))


def test_disconnects_are_unavailable_whatever_their_sqlstate() -> None:
    assert unavailable(OperationalError("SELECT 1", None, DriverError("gone", None)))
    invalidated = DBAPIError("SELECT 1", None, DriverError("gone", None))
    invalidated.connection_invalidated = True
    assert unavailable(invalidated)
