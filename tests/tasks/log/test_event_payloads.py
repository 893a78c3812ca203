"""Tests of `tasks/log/records.py` and `tasks/store/writes.py`.

An event's payload is the task byte for byte as the API shows it, whichever way it was
written: by pydantic (the portable store) or by PostgreSQL (the fast store's statements)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import Float, column, select

from quart_tasks.tasks.log.models import TaskEvent
from quart_tasks.tasks.schemas import TaskOut
from quart_tasks.tasks.store import task_json, writes
from tests.helpers.apps import ADMIN, app_database, bearer, serving, settings_for_test
from tests.helpers.support import TEST_DATABASE_URL

TITLES = [
    "plain",
    'a "quote", a \\ backslash and a / slash',
    "accents é ü, a check ✓, an emoji 😀, a right-to-left ‏mark",
    "a tab\t, a newline\n, a bell \x07 and an escape \x1b",
    "</script><script>alert(1)</script>",
    "x" * 200,
]

FAST_PATH = [True, False] if TEST_DATABASE_URL else [False]
"""On PostgreSQL the fast store writes creates and changes with PostgreSQL's JSON."""


async def payloads(app: Quart, task_id: int) -> dict[str, str]:
    """Each of the task's events' payloads, by event type (the last of each type)."""
    sessionmaker = app_database(app).sessionmaker
    assert sessionmaker is not None
    async with sessionmaker() as session:
        rows = await session.execute(
            select(TaskEvent.type, TaskEvent.payload)
            .where(TaskEvent.task_id == task_id)
            .order_by(TaskEvent.id)
        )
        return {event_type: payload for event_type, payload in rows}


@pytest.mark.parametrize("fast_path", FAST_PATH, ids=lambda on: "fast" if on else "portable")
async def test_every_payload_is_the_api_body_byte_for_byte(tmp_path: Path, fast_path: bool) -> None:
    async with serving(settings_for_test(tmp_path, DB_FAST_PATH=fast_path)) as app:
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        for n, title in enumerate(TITLES):
            created = await client.post(
                "/api/tasks", json={"title": title, "done": n % 2 == 0}, headers=auth
            )
            assert created.status_code == 201
            body = await created.get_data()
            task_id = json.loads(body)["id"]
            changed = await client.patch(
                f"/api/tasks/{task_id}", json={"done": n % 2 == 1}, headers=auth
            )
            assert changed.status_code == 200
            logged = await payloads(app, task_id)

            assert logged["task.created"].encode() == body
            assert logged["task.updated"].encode() == await changed.get_data()
            assert list(json.loads(logged["task.updated"])) == list(TaskOut.model_fields)


def test_a_field_postgresql_cannot_write_stops_the_statements_being_built() -> None:
    with pytest.raises(TypeError, match="no SQL writes a TaskOut field"):
        task_json._json_value(column("score", Float), float, [])


def test_the_sql_writes_every_field_of_the_schema_in_order() -> None:
    written: Any = task_json.task_json(writes.TASKS).compile(compile_kwargs={"literal_binds": True})
    text = str(written)
    positions = [text.index(json.dumps(name)) for name in TaskOut.model_fields]
    assert positions == sorted(positions)
