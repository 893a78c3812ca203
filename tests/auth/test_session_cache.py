"""The verified-session cache: fewer queries, and revocation still takes effect."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import delete, event, text

from quart_tasks.auth.session_cache import RENEWAL_RETRY_SECONDS, SessionCache
from quart_tasks.models import User
from quart_tasks.services import services_of
from tests.helpers.apps import ADMIN, app_database, bearer, serving, settings_for_test


@contextmanager
def session_queries(app: Quart) -> Iterator[list[str]]:
    """The statements that look a token's session up, while the block runs."""
    engine = app_database(app).engine.sync_engine  # type: ignore[union-attr]
    seen: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "token_families" in statement and "revoked_at IS NULL" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", capture)


@pytest.mark.parametrize(
    ("cache_seconds", "session_queries_for_three"),
    [(60, 1), (0, 3)],
    ids=["cached: one query", "no cache: every request asks"],
)
async def test_the_session_query_runs_once_per_cache_period(
    tmp_path: Path, cache_seconds: int, session_queries_for_three: int
) -> None:
    async with serving(settings_for_test(tmp_path, AUTH_CACHE_SECONDS=cache_seconds)) as app:
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        with session_queries(app) as seen:
            for _ in range(3):
                assert (await client.get("/api/tasks", headers=auth)).status_code == 200

    assert len(seen) == session_queries_for_three


async def test_logout_takes_effect_at_once_despite_the_cache(tmp_path: Path) -> None:
    async with serving(settings_for_test(tmp_path, AUTH_CACHE_SECONDS=60)) as app:
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        assert (await client.get("/api/tasks", headers=auth)).status_code == 200

        await client.post("/api/logout", headers=auth)

        assert (await client.get("/api/tasks", headers=auth)).status_code == 401


async def delete_every_user(app: Quart) -> None:
    async with app_database(app).sessionmaker() as session:  # type: ignore[misc]
        await session.execute(delete(User))
        await session.commit()


async def test_a_deleted_user_is_refused_once_the_entry_expires(tmp_path: Path) -> None:
    async with serving(settings_for_test(tmp_path, AUTH_CACHE_SECONDS=0.3)) as app:
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        assert (await client.get("/api/tasks", headers=auth)).status_code == 200
        await delete_every_user(app)

        await asyncio.sleep(0.4)

        assert (await client.get("/api/tasks", headers=auth)).status_code == 401


def test_the_cache_is_bounded_and_forgets_whole_families() -> None:
    cache: SessionCache[str] = SessionCache(seconds=60, max_entries=2)
    cache.put(1, "a", "one")
    cache.put(2, "b", "two")
    cache.put(3, "c", "three")
    cache.forget_family("c")

    assert (cache.get(1, "a"), cache.get(2, "b"), cache.get(3, "c")) == (None, "two", None)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_past_half_its_life_is_renewed_by_one_caller_while_the_rest_use_it() -> None:
    clock = Clock()
    cache: SessionCache[str] = SessionCache(seconds=10, clock=clock)
    cache.put(1, "a", "v1")
    clock.now += 4
    assert cache.get(1, "a") == "v1"

    clock.now += 2  # past half its life
    assert cache.get(1, "a") is None, "the first caller renews it"
    assert [cache.get(1, "a") for _ in range(3)] == ["v1"] * 3

    cache.put(1, "a", "v2")
    clock.now += 4.5  # past the first entry's end, in the first half of the renewed one's
    assert cache.get(1, "a") == "v2"


def test_a_renewer_that_never_answers_hands_the_renewal_on() -> None:
    """Its check failed (the database was away a moment), or its client left: without
    a second renewer the entry would lapse, and every request of that moment miss."""
    clock = Clock()
    cache: SessionCache[str] = SessionCache(seconds=10, clock=clock)
    cache.put(1, "a", "v1")
    clock.now += 6
    assert cache.get(1, "a") is None  # the first renewer, who never puts
    clock.now += RENEWAL_RETRY_SECONDS / 2
    assert cache.get(1, "a") == "v1", "its claim still holds"
    clock.now += RENEWAL_RETRY_SECONDS
    assert cache.get(1, "a") is None, "a second caller renews it"
    assert cache.get(1, "a") == "v1"
    cache.put(1, "a", "v2")
    clock.now += 4.5
    assert cache.get(1, "a") == "v2"


def test_an_entry_nobody_renews_still_ends_on_time() -> None:
    clock = Clock()
    cache: SessionCache[str] = SessionCache(seconds=10, clock=clock)
    cache.put(1, "a", "v1")
    clock.now += 6
    assert cache.get(1, "a") is None  # the renewer, who never comes back

    clock.now += 4
    assert cache.get(1, "a") is None


def app_clock(app: Quart) -> Clock:
    clock = Clock()
    services_of(app).session_cache.clock = clock
    return clock


async def test_concurrent_requests_past_half_an_entrys_life_check_the_session_once(
    tmp_path: Path,
) -> None:
    async with serving(settings_for_test(tmp_path, AUTH_CACHE_SECONDS=60)) as app:
        clock = app_clock(app)
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())

        async def twenty_at_once() -> list[int]:
            responses = await asyncio.gather(
                *(client.get("/api/tasks", headers=auth) for _ in range(20))
            )
            return [response.status_code for response in responses]

        assert await twenty_at_once() == [200] * 20  # the cache filled
        with session_queries(app) as seen:
            clock.now += 31
            assert await twenty_at_once() == [200] * 20
            assert len(seen) == 1
            clock.now += 30  # past where the first entry would have ended
            assert await twenty_at_once() == [200] * 20
            assert len(seen) == 2


async def test_a_renewal_that_finds_the_user_gone_ends_the_entry_at_once(tmp_path: Path) -> None:
    async with serving(settings_for_test(tmp_path, AUTH_CACHE_SECONDS=60)) as app:
        clock = app_clock(app)
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        assert (await client.get("/api/tasks", headers=auth)).status_code == 200
        await delete_every_user(app)

        clock.now += 31

        assert (await client.get("/api/tasks", headers=auth)).status_code == 401
        assert (await client.get("/api/tasks", headers=auth)).status_code == 401


async def test_requests_that_miss_together_check_the_session_once(tmp_path: Path) -> None:
    async with serving(settings_for_test(tmp_path, AUTH_CACHE_SECONDS=60)) as app:
        clock = app_clock(app)
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        assert (await client.get("/api/tasks", headers=auth)).status_code == 200
        clock.now += 61  # the entry has ended: every request misses

        with session_queries(app) as seen:
            responses = await asyncio.gather(
                *(client.get("/api/tasks", headers=auth) for _ in range(20))
            )

        assert [response.status_code for response in responses] == [200] * 20
        assert len(seen) == 1


class HeldCheck:
    """A session check that answers when the test says, counting how often it ran."""

    def __init__(self) -> None:
        self.runs = 0
        self.release = asyncio.Event()
        self.outcome: str | BaseException | None = "v2"

    async def __call__(self) -> str | None:
        self.runs += 1
        await self.release.wait()
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


async def started(*coroutines: Any) -> list[asyncio.Task[Any]]:
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    await asyncio.sleep(0.01)  # each has missed, and checks or waits
    return tasks


async def test_an_entry_that_ends_while_its_renewal_is_under_way_waits_for_it() -> None:
    clock = Clock()
    cache: SessionCache[str] = SessionCache(seconds=10, clock=clock)
    cache.put(1, "a", "v1")
    check = HeldCheck()
    clock.now += 6
    (renewer,) = await started(cache.value(1, "a", check))
    clock.now += 5  # the entry ends before the renewal answers

    waiting = await started(*(cache.value(1, "a", check) for _ in range(3)))
    check.release.set()

    assert await asyncio.gather(renewer, *waiting) == ["v2"] * 4
    assert check.runs == 1
    assert cache.get(1, "a") == "v2"


@pytest.mark.parametrize("ending", ["fails", "is cancelled"])
async def test_a_check_that_ends_without_an_answer_leaves_the_waiters_to_ask_once_more(
    ending: str,
) -> None:
    cache: SessionCache[str] = SessionCache(seconds=10, clock=Clock())
    first = HeldCheck()
    first.outcome = OSError("the database went away")
    (leader,) = await started(cache.value(1, "a", first))
    second = HeldCheck()
    waiting = await started(*(cache.value(1, "a", second) for _ in range(3)))

    if ending == "fails":
        first.release.set()
        with pytest.raises(OSError, match="went away"):
            await leader
    else:
        leader.cancel()
    await asyncio.sleep(0.01)
    second.release.set()

    assert await asyncio.gather(*waiting) == ["v2"] * 3
    assert second.runs == 1


async def test_a_session_forgotten_while_checked_is_not_remembered_after() -> None:
    """A logout in this process while a check of its session is under way."""
    cache: SessionCache[str] = SessionCache(seconds=10, clock=Clock())
    before = HeldCheck()
    (under_way,) = await started(cache.value(1, "a", before))
    cache.forget(1, "a")
    after = HeldCheck()
    after.outcome = None
    (asked_after,) = await started(cache.value(1, "a", after))

    before.release.set()
    after.release.set()

    assert await under_way == "v2"  # it asked before the logout
    assert await asked_after is None, "a request after the logout asks for itself"
    assert (before.runs, after.runs) == (1, 1)
    assert cache.get(1, "a") is None


async def test_a_renewal_takes_its_connection_before_requests_already_waiting(
    tmp_path: Path,
) -> None:
    """Behind a long line for the pool, a renewal at its back could outwait the entry
    it renews, and every request of the session would then wait for it."""
    config = settings_for_test(tmp_path, AUTH_CACHE_SECONDS=60, DB_POOL_SIZE=1)
    async with serving(config) as app:
        clock = app_clock(app)
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        created = await client.post("/api/tasks", json={"title": "read"}, headers=auth)
        url = f"/api/tasks/{(await created.get_json())['id']}"
        engine = app_database(app).engine
        assert engine is not None
        line = engine.pool._pool._waiters  # type: ignore[attr-defined]
        finished: list[str] = []

        async def read(name: str) -> None:  # one statement, one checkout
            assert (await client.get(url, headers=auth)).status_code == 200
            finished.append(name)

        async def until_in_line(count: int) -> None:
            for _ in range(1000):
                if len(line) >= count:
                    return
                await asyncio.sleep(0.001)
            raise AssertionError(f"{count} requests never queued for the pool")

        async with engine.connect() as holder:
            await holder.execute(text("SELECT 1"))  # the pool's one connection, held
            queued: list[asyncio.Task[None]] = []
            for n in range(3):  # one at a time: reads by id of one moment share a checkout
                queued.append(asyncio.create_task(read(f"queued {n}")))
                await until_in_line(n + 1)  # authenticated from the cache, waiting to read
            clock.now += 31  # past half the entry's life: the next request renews it
            renewal = asyncio.create_task(read("renewal"))
            await until_in_line(4)
        await asyncio.gather(*queued, renewal)

    assert finished == ["renewal", "queued 0", "queued 1", "queued 2"]
