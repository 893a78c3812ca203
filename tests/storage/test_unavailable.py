"""Every way to PostgreSQL answers an unavailable database alike: 503 with `Retry-After`.

A new connection refused while the server shuts down (asyncpg's own error, which
the pool does not wrap) on the asyncpg path and its batches, and a database that
refuses writes (as a standby does after a failover) on that path and on the
session's. These run on the local PostgreSQL whatever backend the suite runs on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
from quart import Quart
from sqlalchemy import text

from quart_tasks.services import services_of
from tests.helpers.apps import ADMIN, app_database, app_on_postgres, bearer
from tests.helpers.outages import RefusingConnections
from tests.helpers.servers import LOCAL_POSTGRES


async def stored(app: Quart, statement: str) -> Any:
    async with app_database(app).sessionmaker() as session:  # type: ignore[misc]
        return await session.scalar(text(statement))


async def signed_in_with_a_task(app: Quart) -> tuple[Any, dict[str, str], str]:
    """A test client, an admin's headers, and the URL of a task just created."""
    client = app.test_client()
    auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
    created = await client.post("/api/tasks", json={"title": "a"}, headers=auth)
    return client, auth, f"/api/tasks/{(await created.get_json())['id']}"


async def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, await response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "1"
    assert (await response.get_json())["error"]["code"] == "service_unavailable"


async def test_a_new_connection_refused_on_the_asyncpg_path_is_503(tmp_path: Path) -> None:
    async with app_on_postgres(tmp_path, AUTH_CACHE_SECONDS=60, RETRY_AFTER_SECONDS=1) as app:
        client, auth, task_url = await signed_in_with_a_task(app)
        driver = services_of(app).database.driver
        assert driver is not None
        engine = driver.engine
        driver.engine = RefusingConnections(engine)  # type: ignore[assignment]
        try:
            read = await client.get(task_url, headers=auth)  # a read batch
            listed = await client.get("/api/tasks", headers=auth)
            create = await client.post("/api/tasks", json={"title": "b"}, headers=auth)  # a batch
            patch = await client.patch(task_url, json={"done": True}, headers=auth)
        finally:
            driver.engine = engine
        after = await client.get(task_url, headers=auth)
        count = await stored(app, "SELECT count(*) FROM tasks")

    for response in (read, listed, create, patch):
        await assert_unavailable(response)
    assert after.status_code == 200
    assert (await after.get_json())["done"] is False, "the refused change did not happen"
    assert count == 1, "the refused create did not happen"


async def test_a_database_that_refuses_writes_is_503_for_writes_and_serves_reads(
    tmp_path: Path,
) -> None:
    async with app_on_postgres(tmp_path, RETRY_AFTER_SECONDS=1) as app:
        client, auth, task_url = await signed_in_with_a_task(app)
        name = str(app_database(app).engine.url.database)  # type: ignore[union-attr]
        await set_read_only(app, name, True)
        try:
            read = await client.get(task_url, headers=auth)
            alone = await client.post("/api/tasks", json={"title": "b"}, headers=auth)
            keyed = await client.post(
                "/api/tasks", json={"title": "c"}, headers={**auth, "Idempotency-Key": "k1"}
            )
            patch = await client.patch(task_url, json={"done": True}, headers=auth)
            guarded = await client.delete(task_url, headers={**auth, "If-Match": "*"})
        finally:
            await set_read_only(app, name, False)
        again = await client.post(
            "/api/tasks", json={"title": "c"}, headers={**auth, "Idempotency-Key": "k1"}
        )
        count = await stored(app, "SELECT count(*) FROM tasks")

    assert read.status_code == 200
    for response in (alone, keyed, patch, guarded):
        await assert_unavailable(response)
    assert again.status_code == 201, "the refused keyed create is retried with its key"
    assert count == 2


async def set_read_only(app: Quart, database_name: str, read_only: bool) -> None:
    """As a standby after a failover: new connections refuse writes (25006)."""
    setting = "on" if read_only else "off"
    maintenance = await asyncpg.connect(**LOCAL_POSTGRES, database="postgres")
    try:
        await maintenance.execute(
            f'ALTER DATABASE "{database_name}" SET default_transaction_read_only = {setting}'
        )
    finally:
        await maintenance.close()
    await app_database(app).engine.dispose()  # type: ignore[union-attr]
