"""What every restart, failover and maintenance puts a deployment through, under load.

Two workers serve 8 clients (half reading one task by id, half creating tasks, as
an operator's check would) and an event stream, while PostgreSQL is (a) stopped
with a fast shutdown and started again, (b) rid of every backend of the app's
database by `pg_terminate_backend`, or (c) made to refuse writes for a while,
as a standby does after a failover: each on the asyncpg path and on the
session's. No answer is a 500, none waits much past the pool's timeout, every
acknowledged create is stored, each kind of request succeeds again within a
second of the database, and the stream delivers every stored task's event,
without gap or double.

They stop the cluster the other tests use, or load the machine: `alone`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import make_url

from tests.helpers.apps import ADMIN
from tests.helpers.outages import cluster, outage_database, wait_for
from tests.helpers.servers import LOCAL_POSTGRES, all_tasks, postgres_up, served, two_workers
from tests.helpers.streams import Received, event_stream

pytestmark = [pytest.mark.slow, pytest.mark.alone]

POOL_TIMEOUT = 2
LONGEST_ANSWER = POOL_TIMEOUT * 2 + 1  # a connect's timeout, then the pool's, and slack
BACK_WITHIN = 1.0


@dataclass
class Load:
    """What the clients saw, by kind of request."""

    answers: Counter[tuple[str, int]] = field(default_factory=Counter)
    successes: dict[str, list[float]] = field(default_factory=lambda: {"read": [], "create": []})
    slowest: float = 0.0
    acknowledged: set[int] = field(default_factory=set)

    def record(self, kind: str, status: int, started: float) -> None:
        now = time.monotonic()
        self.answers[kind, status] += 1
        self.slowest = max(self.slowest, now - started)
        if status < 300:
            self.successes[kind].append(now)

    def back_after(self, kind: str, moment: float) -> float:
        """Seconds from `moment` to the first success of `kind` after it."""
        return min(t for t in self.successes[kind] if t >= moment) - moment


async def terminate_backends(database: str) -> None:
    admin = await asyncpg.connect(**LOCAL_POSTGRES, database="postgres")
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await admin.close()


async def set_read_only(database: str, read_only: bool) -> None:
    admin = await asyncpg.connect(**LOCAL_POSTGRES, database="postgres")
    try:
        setting = "on" if read_only else "off"
        await admin.execute(
            f'ALTER DATABASE "{database}" SET default_transaction_read_only = {setting}'
        )
    finally:
        await admin.close()


async def restart(database: str) -> None:
    await asyncio.to_thread(cluster, "stop")
    await asyncio.sleep(2)
    await asyncio.to_thread(cluster, "start")
    await wait_for(postgres_up)


async def terminate(database: str) -> None:
    for _ in range(3):
        await terminate_backends(database)
        await asyncio.sleep(0.7)


async def refuse_writes(database: str) -> None:
    await set_read_only(database, True)
    await terminate_backends(database)  # the pools' connections come back read-only
    await asyncio.sleep(2)
    await set_read_only(database, False)
    await terminate_backends(database)


DISRUPTIONS: dict[str, Callable[[str], Awaitable[None]]] = {
    "restart": restart,
    "terminate": terminate,
    "read-only": refuse_writes,
}


async def follow(http: httpx.AsyncClient, auth: dict[str, str], seen: list[Received]) -> None:
    """Read the event stream for as long as the test runs, reconnecting after the last id."""
    while True:
        headers = dict(auth)
        if seen:
            headers["Last-Event-ID"] = str(seen[-1].event_id)
        try:
            async with event_stream(http, headers) as stream:
                while True:
                    seen.append(await stream.next(within=60))
        except (httpx.TransportError, EOFError, AssertionError):
            await asyncio.sleep(0.2)


@pytest.mark.parametrize("fast_path", ["true", "false"], ids=["asyncpg-path", "session-path"])
@pytest.mark.parametrize("disruption", list(DISRUPTIONS))
async def test_a_disruption_under_load_is_503_and_loses_nothing(
    tmp_path: Path, disruption: str, fast_path: str
) -> None:
    load = Load()
    seen: list[Received] = []
    async with outage_database() as url:
        database = str(make_url(url).database)
        env = {
            "DB_POOL_TIMEOUT": str(POOL_TIMEOUT),
            "DB_CONNECT_TIMEOUT": str(POOL_TIMEOUT),
            "DB_FAST_PATH": fast_path,
        }
        with served(url, tmp_path, two_workers, **env) as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
                token = (await http.post("/api/login", json=ADMIN)).json()["access_token"]
                auth = {"Authorization": f"Bearer {token}"}
                task = (
                    await http.post("/api/tasks", json={"title": "read me"}, headers=auth)
                ).json()
                following = asyncio.create_task(follow(http, auth, seen))
                done = asyncio.Event()

                async def client(kind: str, number: int) -> None:
                    sent = 0
                    while not done.is_set():
                        started = time.monotonic()
                        try:
                            if kind == "read":
                                answer = await http.get(f"/api/tasks/{task['id']}", headers=auth)
                            else:
                                title = f"client-{number}-{sent}"
                                answer = await http.post(
                                    "/api/tasks", json={"title": title}, headers=auth
                                )
                                sent += 1
                        except httpx.TransportError as error:
                            log = server.output()[-6000:]
                            raise AssertionError(f"{kind}: {error!r}\n{log}") from error
                        load.record(kind, answer.status_code, started)
                        if answer.status_code == 201:
                            load.acknowledged.add(answer.json()["id"])
                        elif answer.status_code >= 300:
                            await asyncio.sleep(0.05)

                back = 0.0

                async def disrupt() -> None:
                    nonlocal back
                    try:
                        await asyncio.sleep(1)
                        await DISRUPTIONS[disruption](database)
                        back = time.monotonic()
                        await asyncio.sleep(2)
                    finally:
                        done.set()

                await asyncio.gather(
                    disrupt(),
                    *(client("read", n) for n in range(4)),
                    *(client("create", n) for n in range(4)),
                )
                stored = await all_tasks(http, auth)
                created = {t["id"] for t in stored} - {task["id"]}

                async def delivered() -> bool:
                    return created <= {e.data["id"] for e in seen if e.event == "task.created"}

                with contextlib.suppress(TimeoutError):
                    await wait_for(delivered)
                following.cancel()
            output = server.output()

    statuses = {status for _, status in load.answers}
    assert statuses <= {200, 201, 503}, (load.answers, output[-6000:])
    assert "Traceback" not in output, output[-6000:]
    assert load.slowest < LONGEST_ANSWER, load.slowest
    assert load.acknowledged <= created, "an acknowledged create was lost"
    for kind in ("read", "create"):
        assert load.back_after(kind, back) < BACK_WITHIN, (kind, load.back_after(kind, back))
    resets = [e for e in seen if e.event == "reset"]
    assert not resets, f"the stream was reset: {resets}"
    undelivered = created - {e.data["id"] for e in seen if e.event == "task.created"}
    assert not undelivered, f"stored, never delivered: {sorted(undelivered)[:20]}"
    positions = [e.event_id for e in seen]
    assert positions == list(range(positions[0], positions[0] + len(positions))), "a gap"
    print(f"\n{disruption}, {fast_path=}: {dict(load.answers)}, slowest {load.slowest:.2f} s")
