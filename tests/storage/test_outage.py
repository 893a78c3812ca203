"""A real PostgreSQL outage: the local cluster is stopped and started under the app.

While it is down `/readyz` and the task routes answer 503 with `Retry-After`
(quickly, no 500); when it is back the same app serves again without a restart,
and nothing it acknowledged is lost. Runs in both CI passes: it always uses
PostgreSQL, whatever `TEST_DATABASE_URL` says.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.helpers.apps import ADMIN, bearer, reset_schema, serving, settings_for_test
from tests.helpers.outages import cluster, outage_database, wait_for
from tests.helpers.servers import all_tasks, postgres_up, served, two_workers

pytestmark = [pytest.mark.slow, pytest.mark.alone]


async def test_an_outage_is_503_and_recovery_needs_no_restart(tmp_path: Path) -> None:
    async with outage_database() as url:
        await reset_schema(url)
        config = settings_for_test(
            tmp_path, DATABASE_URL=url, DB_POOL_TIMEOUT=2, DB_CONNECT_TIMEOUT=2
        )
        async with serving(config, fresh_schema=False) as app:
            client = app.test_client()
            auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
            kept = await (
                await client.post("/api/tasks", json={"title": "before"}, headers=auth)
            ).get_json()

            cluster("stop")
            try:
                during = []
                for method, path, body in [
                    ("GET", "/readyz", None),
                    ("GET", "/api/tasks", None),
                    ("POST", "/api/tasks", {"title": "during"}),
                    ("PATCH", f"/api/tasks/{kept['id']}", {"done": True}),
                    ("POST", "/api/login", ADMIN),
                ]:
                    started = time.monotonic()
                    response = await client.open(path, method=method, json=body, headers=auth)
                    during.append(
                        (
                            response.status_code,
                            response.headers.get("Retry-After"),
                            time.monotonic() - started,
                        )
                    )
            finally:
                cluster("start")
            await wait_for(postgres_up)

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await wait_for(ready)
            after = await (await client.get("/api/tasks", headers=auth)).get_json()
            created = await client.post("/api/tasks", json={"title": "after"}, headers=auth)

    assert [(status, retry) for status, retry, _ in during] == [(503, "5")] * 5
    assert all(seconds < 5 for _, _, seconds in during)
    assert [item["title"] for item in after["items"]] == ["before"]
    assert after["items"][0]["done"] is False
    assert created.status_code == 201


async def test_a_restart_under_load_is_503_in_the_gap_and_loses_no_write(
    tmp_path: Path,
) -> None:
    """8 clients create tasks against 2 workers while the cluster is stopped and started.

    Each create carries an Idempotency-Key and is retried with it on 503, so every
    attempted task must end up acknowledged once the database is back, and stored once.
    """
    answers: Counter[int] = Counter()
    acknowledged: dict[int, str] = {}
    dropped: list[str] = []
    async with outage_database() as url:
        env = {"DB_POOL_TIMEOUT": "2", "DB_CONNECT_TIMEOUT": "2"}
        with served(url, tmp_path, two_workers, **env) as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
                token = (await http.post("/api/login", json=ADMIN)).json()["access_token"]
                auth = {"Authorization": f"Bearer {token}"}
                outage_over = asyncio.Event()

                async def create_until_acknowledged(title: str) -> None:
                    headers = {**auth, "Idempotency-Key": title}
                    for _ in range(600):
                        try:
                            answer = await http.post(
                                "/api/tasks", json={"title": title}, headers=headers
                            )
                        except httpx.TransportError as error:
                            dropped.append(repr(error))  # asserted below, with the server's log
                            continue
                        answers[answer.status_code] += 1
                        if answer.status_code == 201:
                            acknowledged[answer.json()["id"]] = title
                            return
                        assert answer.status_code in (409, 503), server.output()[-6000:]
                        await asyncio.sleep(0.1)
                    raise AssertionError(f"{title} was never acknowledged")

                async def client(number: int) -> None:
                    sent = 0
                    while not outage_over.is_set():
                        await create_until_acknowledged(f"client-{number}-task-{sent}")
                        sent += 1

                async def outage() -> None:
                    try:
                        await asyncio.sleep(1)
                        await asyncio.to_thread(cluster, "stop")
                        await asyncio.sleep(2)
                        await asyncio.to_thread(cluster, "start")
                        await wait_for(postgres_up)
                        await asyncio.sleep(1)
                    finally:
                        outage_over.set()

                await asyncio.gather(outage(), *(client(number) for number in range(8)))
                stored = await all_tasks(http, auth)
            output = server.output()

    log = "\n".join(line for line in output.splitlines() if "quart_tasks.access" not in line)
    assert not dropped, f"connections dropped: {dropped}\n{log[-8000:]}"
    assert answers[503] > 0, "no request fell into the outage"
    assert set(answers) <= {201, 409, 503}, answers
    assert "Traceback" not in output
    assert {task["id"]: task["title"] for task in stored} == acknowledged
    assert len(stored) == len(acknowledged)
    print(f"\nanswers {dict(answers)}, {len(acknowledged)} tasks acknowledged and stored")
