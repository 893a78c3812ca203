"""`tasks/store/reads_by_id.py`: reads by id of one moment go as one statement, and each
still answers only its caller."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import event

from quart_tasks.storage.driver import DatabaseUnavailable, Driver
from quart_tasks.storage.gathering import GATHER_TURNS
from quart_tasks.tasks.store import statements
from quart_tasks.tasks.store.reads_by_id import ReadsById
from tests.helpers.apps import ADMIN, app_database, app_on_postgres, bearer


@dataclass
class FakeRow:
    id: int
    owner_id: int


class FakeDriver:
    """Answers statements from `owners` (task id to owner id), as PostgreSQL would."""

    def __init__(self, owners: dict[int, int]) -> None:
        self.owners = owners
        self.statements: list[tuple[Any, dict[str, Any]]] = []
        self.gate: asyncio.Event | None = None
        self.failure: BaseException | None = None
        self._asked = asyncio.Condition()

    async def rows(self, statement: Any, values: dict[str, Any]) -> list[FakeRow]:
        async with self._asked:
            self.statements.append((statement, values))
            self._asked.notify_all()
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        ids = [int(task_id) for task_id in values["task_ids"]]
        return [FakeRow(task_id, self.owners[task_id]) for task_id in ids if task_id in self.owners]

    async def until_asked(self, count: int) -> None:
        async with self._asked:
            await self._asked.wait_for(lambda: len(self.statements) >= count)

    @property
    def ids_asked(self) -> list[list[int]]:
        return [[int(task_id) for task_id in values["task_ids"]] for _, values in self.statements]


def batches_on(
    driver: FakeDriver, max_per_run: int = 256, gather_turns: int = GATHER_TURNS
) -> ReadsById:
    return ReadsById(
        lambda: cast(Driver, driver), max_per_run=max_per_run, gather_turns=gather_turns
    )


def found_ids(rows: Iterable[Any]) -> list[int | None]:
    return [None if row is None else row.id for row in rows]


async def test_reads_of_one_turn_go_as_one_statement() -> None:
    driver = FakeDriver({1: 10, 2: 10, 3: 20})
    gathered = batches_on(driver)
    rows = await asyncio.gather(*(gathered.read(task_id, 10) for task_id in (1, 2, 2)))
    assert found_ids(rows) == [1, 2, 2]
    assert len(driver.statements) == 1
    assert driver.statements[0][0] is statements.fetch_many()
    assert driver.ids_asked == [[1, 2, 2]]


async def reads_turn_by_turn(gathered: ReadsById, task_ids: list[int]) -> list[Any]:
    """One read of each id, each started a turn of the event loop after the one before."""
    reads = []
    for task_id in task_ids:
        reads.append(asyncio.ensure_future(gathered.read(task_id, 1)))
        await asyncio.sleep(0)
    return found_ids(await asyncio.gather(*reads))


async def test_reads_of_the_gathering_turns_go_as_one_statement() -> None:
    assert GATHER_TURNS > 1  # a batch of one turn only was measured to cost more
    task_ids = list(range(1, GATHER_TURNS + 1))
    driver = FakeDriver({task_id: 1 for task_id in task_ids})
    assert await reads_turn_by_turn(batches_on(driver), task_ids) == task_ids
    assert driver.ids_asked == [task_ids]


async def test_a_read_past_the_gathering_turns_goes_in_the_next_statement() -> None:
    driver = FakeDriver({1: 1, 2: 1, 3: 1})
    gathered = batches_on(driver, gather_turns=2)
    assert await reads_turn_by_turn(gathered, [1, 2, 3]) == [1, 2, 3]
    assert driver.ids_asked == [[1, 2], [3]]


async def test_a_read_alone_goes_at_once_by_itself() -> None:
    driver = FakeDriver({1: 10})
    row = await batches_on(driver).read(1, 10)
    assert found_ids([row]) == [1]
    assert driver.ids_asked == [[1]]


async def test_each_read_gets_only_what_its_caller_may_see() -> None:
    driver = FakeDriver({1: 10, 2: 20})
    gathered = batches_on(driver)
    rows = await asyncio.gather(
        gathered.read(1, 10),  # the owner
        gathered.read(1, 20),  # someone else: as if it did not exist
        gathered.read(2, None),  # a caller who reaches every task
        gathered.read(3, 10),  # no such task
    )
    assert found_ids(rows) == [1, None, 2, None]
    assert len(driver.statements) == 1


async def test_reads_past_the_largest_batch_go_in_several_statements() -> None:
    driver = FakeDriver({n: 1 for n in range(1, 8)})
    gathered = batches_on(driver, 3)
    rows = await asyncio.gather(*(gathered.read(n, 1) for n in range(1, 8)))
    assert found_ids(rows) == list(range(1, 8))
    assert driver.ids_asked == [[1, 2, 3], [4, 5, 6], [7]]


async def test_reads_after_a_statement_started_go_in_the_next() -> None:
    driver = FakeDriver({1: 1, 2: 1, 3: 1})
    driver.gate = asyncio.Event()
    gathered = batches_on(driver)
    first = asyncio.ensure_future(gathered.read(1, 1))
    await driver.until_asked(1)
    later = asyncio.ensure_future(asyncio.gather(gathered.read(2, 1), gathered.read(3, 1)))
    await driver.until_asked(2)
    driver.gate.set()
    assert found_ids([await first]) == [1]
    assert found_ids(await later) == [2, 3]
    assert driver.ids_asked == [[1], [2, 3]]


async def test_a_read_whose_client_left_is_not_asked_for() -> None:
    driver = FakeDriver({1: 1, 2: 1})
    gathered = batches_on(driver)
    gone = asyncio.ensure_future(gathered.read(1, 1))
    kept = asyncio.ensure_future(gathered.read(2, 1))
    await asyncio.sleep(0)  # both waiting for the next turn's statement
    gone.cancel()
    row = await kept
    assert found_ids([row]) == [2]
    assert gone.cancelled()
    assert driver.ids_asked == [[2]]


async def test_a_read_whose_client_leaves_mid_statement_leaves_the_others_theirs() -> None:
    driver = FakeDriver({1: 1, 2: 1})
    driver.gate = asyncio.Event()
    gathered = batches_on(driver)
    gone = asyncio.ensure_future(gathered.read(1, 1))
    kept = asyncio.ensure_future(gathered.read(2, 1))
    await driver.until_asked(1)
    gone.cancel()
    await asyncio.sleep(0)
    driver.gate.set()
    row = await kept
    assert found_ids([row]) == [2]
    assert gone.cancelled()


async def test_a_failed_statement_fails_each_of_its_reads_and_not_the_next() -> None:
    driver = FakeDriver({1: 1, 2: 1})
    driver.failure = DatabaseUnavailable("connection lost")
    gathered = batches_on(driver)
    outcomes = await asyncio.gather(
        gathered.read(1, 1), gathered.read(2, 1), return_exceptions=True
    )
    assert [type(outcome) for outcome in outcomes] == [DatabaseUnavailable] * 2
    driver.failure = None
    row = await gathered.read(1, 1)
    assert found_ids([row]) == [1]


async def test_reads_through_the_api_share_a_connection_and_keep_their_owners(
    tmp_path: Path,
) -> None:
    async with app_on_postgres(tmp_path, AUTH_CACHE_SECONDS=60) as app:
        client = app.test_client()
        admin = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        users = {}
        for name in ("alice", "bob"):
            account = {"username": name, "password": "correct horse battery"}
            made = await client.post("/api/users", json=account, headers=admin)
            assert made.status_code == 201
            users[name] = bearer(await (await client.post("/api/login", json=account)).get_json())
        created = await client.post("/api/tasks", json={"title": "alice's"}, headers=users["alice"])
        alices = await created.get_json()
        url = f"/api/tasks/{alices['id']}"
        missing = f"/api/tasks/{alices['id'] + 1000}"
        for auth in (*users.values(), admin):  # every caller's session already checked
            await client.get(missing, headers=auth)

        engine = app_database(app).engine
        assert engine is not None
        checkouts: list[object] = []
        event.listen(engine.sync_engine.pool, "checkout", lambda *args: checkouts.append(args))
        answers = await asyncio.gather(
            client.get(url, headers=users["alice"]),
            client.get(url, headers=users["bob"]),
            client.get(url, headers=admin),
            client.get(missing, headers=users["alice"]),
            client.get(url, headers=users["alice"]),
        )
        bodies = [await answer.get_json() for answer in answers]

    assert [answer.status_code for answer in answers] == [200, 404, 200, 404, 200]
    assert bodies[0] == bodies[2] == bodies[4] == alices
    assert bodies[1]["error"]["code"] == "not_found"
    assert len(checkouts) == 1, "five reads of one moment, one statement"


@pytest.mark.parametrize("count", [1, 3])
async def test_reads_by_id_on_postgresql_return_the_stored_rows(tmp_path: Path, count: int) -> None:
    """The batch statement's rows are the single statement's, field by field."""
    async with app_on_postgres(tmp_path) as app:
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        made = [
            await (
                await client.post("/api/tasks", json={"title": f"t{n}"}, headers=auth)
            ).get_json()
            for n in range(count)
        ]
        driver = app_database(app).driver
        assert driver is not None
        gathered = ReadsById(lambda: driver)
        rows = await asyncio.gather(*(gathered.read(task["id"], None) for task in made))
        singles = [
            await driver.first(statements.fetch(any_owner=True), {"task_id": task["id"]})
            for task in made
        ]
    assert [dict(row) for row in rows if row is not None] == [
        dict(row) for row in singles if row is not None
    ]
    assert len(rows) == count
