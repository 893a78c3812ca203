"""Any sequence of creates, replaces, patches and deletes agrees with a plain dict.

A Hypothesis state machine drives the real app (its test client, on the
database under test) and a model side by side, checking after every step that
the API shows exactly the model's tasks, and that refused requests changed
nothing.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
)

from quart_tasks import create_app
from tests.helpers.apps import ADMIN, reset_schema, settings_for_test

pytestmark = pytest.mark.slow

# No control characters: Python's str.strip() and the API's stripping (Unicode
# White_Space) disagree on some of them, and the model must not guess. Padding
# both agree on is added explicitly.
CORE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=190,
)
PADDING = st.sampled_from(["", " ", "  ", "\t", "\n ", " \r\n"])
VALID_TITLE = st.builds(lambda left, core, right: left + core + right, PADDING, CORE, PADDING)
ANY_TITLE = st.one_of(VALID_TITLE, st.just(""), st.just("   "), st.text(min_size=201, max_size=210))


def valid(title: str) -> bool:
    stripped = title.strip()
    return 1 <= len(stripped) <= 200 and "\x00" not in stripped


class TasksAgreeWithAModel(RuleBasedStateMachine):
    ids = Bundle("ids")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.workdir = tempfile.TemporaryDirectory()
        config = settings_for_test(Path(self.workdir.name))
        self.loop.run_until_complete(reset_schema(config.DATABASE_URL))
        self.app = create_app(config)
        self.test_app = self.app.test_app()
        self.loop.run_until_complete(self.test_app.__aenter__())
        self.client = self.app.test_client()
        login = self.call("POST", "/api/login", ADMIN)
        self.auth = {"Authorization": f"Bearer {login[1]['access_token']}"}
        self.model: dict[int, tuple[str, bool]] = {}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async def send() -> tuple[int, Any]:
            headers = getattr(self, "auth", {})
            response = await self.client.open(path, method=method, json=body, headers=headers)
            data = await response.get_data()
            return response.status_code, (await response.get_json()) if data else None

        return self.loop.run_until_complete(send())

    def teardown(self) -> None:
        # quart.typing types __aexit__'s arguments as never None.
        self.loop.run_until_complete(self.test_app.__aexit__(None, None, None))  # type: ignore[arg-type]
        self.loop.close()
        self.workdir.cleanup()

    @rule(target=ids, title=ANY_TITLE, done=st.booleans())
    def create(self, title: str, done: bool) -> MultipleResults[int]:
        status, body = self.call("POST", "/api/tasks", {"title": title, "done": done})
        if not valid(title):
            assert status == 400
            return multiple()  # no id to remember
        assert status == 201
        self.model[body["id"]] = (title.strip(), done)
        return multiple(int(body["id"]))

    @rule(task_id=ids, title=ANY_TITLE, done=st.booleans())
    def replace(self, task_id: int, title: str, done: bool) -> None:
        status, _ = self.call("PUT", f"/api/tasks/{task_id}", {"title": title, "done": done})
        if not valid(title):
            assert status == 400
        elif task_id not in self.model:
            assert status == 404
        else:
            assert status == 200
            self.model[task_id] = (title.strip(), done)

    @rule(task_id=ids, title=st.none() | ANY_TITLE, done=st.none() | st.booleans())
    def patch(self, task_id: int, title: str | None, done: bool | None) -> None:
        change = {k: v for k, v in (("title", title), ("done", done)) if v is not None}
        status, _ = self.call("PATCH", f"/api/tasks/{task_id}", change)
        if title is not None and not valid(title):
            assert status == 400
        elif task_id not in self.model:
            assert status == 404
        else:
            assert status == 200
            old_title, old_done = self.model[task_id]
            self.model[task_id] = (
                title.strip() if title is not None else old_title,
                done if done is not None else old_done,
            )

    @rule(task_id=consumes(ids))
    def delete(self, task_id: int) -> None:
        status, _ = self.call("DELETE", f"/api/tasks/{task_id}")
        assert status == (204 if task_id in self.model else 404)
        self.model.pop(task_id, None)

    @invariant()
    def the_api_shows_the_model(self) -> None:
        status, body = self.call("GET", "/api/tasks?sort=id_asc&page_size=100")
        assert status == 200
        shown = {item["id"]: (item["title"], item["done"]) for item in body["items"]}
        assert shown == self.model
        assert body["total"] == len(self.model)


TasksAgreeWithAModel.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
test_tasks_agree_with_a_model = TasksAgreeWithAModel.TestCase
