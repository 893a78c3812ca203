"""`tasks/log/signals.py`: a write's events are announced to this process once, after
they commit, whichever way they were written; a write that commits nothing announces
nothing."""

from __future__ import annotations

from pathlib import Path

from quart import Quart

from quart_tasks.tasks.log.signals import events_committed
from tests.helpers.apps import ADMIN, bearer, serving, settings_for_test


async def test_each_committed_write_is_announced_once_and_a_refused_one_never(
    tmp_path: Path,
) -> None:
    announced: list[Quart] = []

    def heard(app: Quart) -> None:
        announced.append(app)

    async with serving(settings_for_test(tmp_path)) as app:
        events_committed.connect(heard, sender=app)
        try:
            client = app.test_client()
            auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
            created = await client.post("/api/tasks", json={"title": "a"}, headers=auth)
            assert created.status_code == 201
            assert len(announced) == 1
            url = f"/api/tasks/{(await created.get_json())['id']}"
            stale = {**auth, "If-Match": '"9"'}
            assert (await client.patch(url, json={"done": True}, headers=stale)).status_code == 412
            assert (await client.delete(url, headers=stale)).status_code == 412
            assert len(announced) == 1, "a refused write commits no event"
            key = {**auth, "Idempotency-Key": "one-key"}
            keyed = await client.post("/api/tasks", json={"title": "b"}, headers=key)
            assert keyed.status_code == 201
            assert (await client.delete(url, headers=auth)).status_code == 204
            assert len(announced) == 3
        finally:
            events_committed.disconnect(heard, sender=app)
