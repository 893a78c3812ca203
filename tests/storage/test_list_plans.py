"""Every list shape, on PostgreSQL, for an owner whose tasks are the oldest half of the
table, for an owner of a few, for an admin's `owner=<name>` and `owner=*`: each read of
`tasks` goes through the index built for it, without a sequential scan, a sort of the
table's rows, or a filter that drops more rows than it keeps.

The plans are `EXPLAIN ANALYZE`'s, of the statements the API really runs, with their
values, on a seed with the skew that made the planner walk the primary key past
every newer task (`bench/scale.py` times the same shapes at 2,000,000 tasks).

A search (`q`) is held to less. The planner chooses, by how many titles it expects
the fragment in, between the trigram index (then a sort of the matches) and a walk
of a list index that drops the titles without it: nine for each match when a tenth
hold "bravo". A search reads only its list's indexes, the trigram index and the
primary key, and never the table whole, but for one case: a fragment under three
characters has no trigram, so every title in the list's scope is read, and for a
scope that holds most of the table (the heavy user's, or everyone's) PostgreSQL may
read them from the table rather than from a list index. A small account's search
never reads other accounts' rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from asyncpg.prepared_stmt import PreparedStatement
from quart import Quart
from sqlalchemy import text

from quart_tasks.tasks.models import SORT_COLUMNS
from quart_tasks.tasks.sorting import SORT_ORDERS
from tests.helpers.apps import ADMIN, app_database, app_on_postgres, bearer
from tests.helpers.statements import statements_run
from tests.storage.test_indexes import nodes

HEAVY_TASKS = 20_000
LIGHT_USERS = 40
LIGHT_TASKS = 500  # 20,000 in all, interleaved, after the heavy user's
WORDS = ["alfa", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "kilo"]
PASSWORD = "correct horse battery"
TRIGRAMS = "ix_tasks_owner_id_title_trigrams"
PRIMARY_KEY = "pk_tasks"


def list_index(scope: str, sort: str) -> str:
    """The index a list in `sort` order reads: the owners' or the all-owners' family."""
    columns = next(
        columns
        for columns in SORT_COLUMNS
        if columns == tuple(column.key for column in SORT_ORDERS[sort].columns)
    )
    family = "ix_tasks_done_desc" if scope == "owner=*" else "ix_tasks_owner_id_done"
    return f"{family}_{'_'.join(columns)}"


@dataclass(frozen=True)
class Scope:
    name: str
    headers: dict[str, str]
    query: dict[str, str]


async def seed(app: Quart) -> list[Scope]:
    """`heavy` with the oldest 20,000 tasks, then 40 users' 500 each, created interleaved;
    a tenth of the titles hold "bravo", a third of the tasks are done."""
    client = app.test_client()
    admin = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
    tokens = {}
    for name in ("heavy", "light"):
        account = {"username": name, "password": PASSWORD}
        assert (await client.post("/api/users", json=account, headers=admin)).status_code == 201
        tokens[name] = bearer(await (await client.post("/api/login", json=account)).get_json())

    words = ", ".join(f"'{word}'" for word in WORDS)
    titles = f"(ARRAY[{words}])[1 + n % 10] || ' task ' || n"
    await insert_then_analyze(
        app,
        "INSERT INTO users (username, username_key, password_hash, role, created_at) "
        "SELECT 'other' || u, 'other' || u, '-', 'user', now() "
        f"FROM generate_series(1, {LIGHT_USERS - 1}) AS u",
        "INSERT INTO tasks (owner_id, title, done, version, created_at, updated_at) "
        f"SELECT users.id, {titles}, n % 3 = 0, 1, "
        "now() - interval '60 days' + n * interval '1 ms', "
        "now() - interval '60 days' + n * interval '1 ms' "
        f"FROM generate_series(0, {HEAVY_TASKS - 1}) AS n, users "
        "WHERE users.username = 'heavy'",
        "INSERT INTO tasks (owner_id, title, done, version, created_at, updated_at) "
        f"SELECT u.id, {titles}, n % 3 = 0, 1, "
        "now() - interval '30 days' + (n * 100 + u.id) * interval '1 ms', "
        "now() - interval '30 days' + (n * 100 + u.id) * interval '1 ms' "
        f"FROM generate_series(0, {LIGHT_TASKS - 1}) AS n CROSS JOIN users AS u "
        "WHERE u.username = 'light' OR u.username LIKE 'other%' ORDER BY n, u.id",
    )
    return [
        Scope("heavy", tokens["heavy"], {}),
        Scope("light", tokens["light"], {}),
        Scope("owner=heavy", admin, {"owner": "heavy"}),
        Scope("owner=*", admin, {"owner": "*"}),
    ]


async def insert_then_analyze(app: Quart, *inserts: str) -> None:
    """Run `inserts` in one transaction, then VACUUM ANALYZE, as autovacuum would after
    such a load."""
    engine = app_database(app).engine
    assert engine is not None
    async with engine.begin() as connection:
        for insert in inserts:
            await connection.execute(text(insert))
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE tasks"))
        await autocommit.execute(text("VACUUM ANALYZE task_counts"))


def faults(
    plan: dict[str, Any],
    allowed: set[str],
    intended: str,
    *,
    search: bool,
    whole_scope: bool = False,
) -> list[str]:
    """What in `plan` breaks this module's rules (see its docstring); `whole_scope`: the
    statement reads every title in a scope that holds most of the table."""
    found, used = [], set()
    for node in nodes(plan):
        if node["Node Type"] == "Bitmap Index Scan":
            used.add(node["Index Name"])
        if node.get("Relation Name") != "tasks":
            continue
        if node["Node Type"] == "Seq Scan" and not whole_scope:
            found.append("a sequential scan of tasks")
        if "Index Name" in node:
            used.add(node["Index Name"])
        kept = node["Actual Rows"] * node["Actual Loops"]
        dropped = node.get("Rows Removed by Filter", 0) * node["Actual Loops"]
        if dropped > kept and not search:
            found.append(f"{node.get('Index Name')} dropped {dropped} rows, kept {kept}")
    for node in nodes(plan):
        below = node.get("Plans", [])
        sorts_tasks = node["Node Type"] == "Sort" and below and below[0].get("Relation Name")
        if sorts_tasks == "tasks" and not search:
            found.append("a sort of rows read from tasks")
    if used - allowed:
        found.append(f"read by {sorted(used - allowed)}")
    if intended not in used and not search:
        found.append(f"not read by {intended}")
    return found


async def explained(
    app: Quart, statement: str, parameters: Any, *, generic: bool = False
) -> dict[str, Any]:
    """The plan PostgreSQL makes for `statement` with these values, or, if `generic`,
    the one it makes for any values and may keep for a prepared statement after its
    first five runs (run with these values)."""
    engine = app_database(app).engine
    assert engine is not None
    async with engine.connect() as connection:
        if not generic:
            rows = await connection.exec_driver_sql(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters
            )
            return rows.scalar_one()[0]["Plan"]  # type: ignore[no-any-return]
        await connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        await connection.exec_driver_sql(f"PREPARE listed AS {statement}")
        values = ", ".join(sql_literal(value) for value in parameters)
        rows = await connection.exec_driver_sql(
            f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE listed({values})"
        )
        plan = rows.scalar_one()[0]["Plan"]
        await connection.exec_driver_sql("DEALLOCATE listed")
        await connection.exec_driver_sql("RESET plan_cache_mode")
        return plan  # type: ignore[no-any-return]


def sql_literal(value: Any) -> str:
    """`value` written into SQL, for EXECUTE (which takes no bound parameters)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str | datetime):
        return "'" + str(value).replace("'", "''") + "'"
    raise TypeError(f"no literal for {value!r}")


@contextmanager
def searches_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any]]]:
    """The statements run unnamed, planned for their values (`PLANNED_EACH_RUN`), which
    asyncpg's query loggers do not see, with their values."""
    sent: list[tuple[str, Any]] = []
    fetch = PreparedStatement.fetch

    async def spied(statement: PreparedStatement, *args: Any, **options: Any) -> Any:
        if statement.get_name() == "":
            sent.append((statement.get_query(), args))
        return await fetch(statement, *args, **options)

    with monkeypatch.context() as patched:
        patched.setattr(PreparedStatement, "fetch", spied)
        yield sent


def list_statements(sent: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [
        (statement, parameters)
        for statement, parameters in sent
        if statement.lstrip().upper().startswith("SELECT") and "FROM tasks" in statement
    ]


async def test_every_list_shape_reads_its_own_index_on_a_skewed_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with app_on_postgres(tmp_path) as app:
        scopes = await seed(app)
        client = app.test_client()
        checked = 0
        problems: list[str] = []

        async def check(scope: Scope, query: dict[str, str], *, search: bool) -> dict[str, Any]:
            nonlocal checked
            short = len(query.get("q", "abc")) < 3
            whole_scope = short and scope.name != "light"
            sort = query.get("sort", "id_desc")
            intended = list_index(scope.name, sort)
            allowed = {intended, PRIMARY_KEY}
            if search:
                allowed |= {TRIGRAMS, *(list_index(scope.name, other) for other in SORT_ORDERS)}
            url = f"/api/tasks?{urlencode({**scope.query, **query})}"
            with statements_run(app) as sent, searches_run(monkeypatch) as searched:
                response = await client.get(url, headers=scope.headers)
            assert response.status_code == 200, url
            statements = list_statements(sent + searched)
            assert statements, f"{url}: no list statement seen"
            for statement, parameters in statements:
                # A search is planned for its values at every run (`PLANNED_EACH_RUN`).
                for generic in (False,) if search else (False, True):
                    plan = await explained(app, statement, parameters, generic=generic)
                    checked += 1
                    problems.extend(
                        f"{scope.name} {url}{' (generic plan)' if generic else ''}: {fault}"
                        for fault in faults(
                            plan, allowed, intended, search=search, whole_scope=whole_scope
                        )
                    )
            return await response.get_json()  # type: ignore[no-any-return]

        for scope in scopes:
            for sort in SORT_ORDERS:
                for done in ({}, {"done": "true"}, {"done": "false"}):
                    shape = {"sort": sort, **done}
                    await check(scope, {**shape, "page": "1"}, search=False)
                    await check(scope, {**shape, "page": "40"}, search=False)
                    first = await check(scope, {**shape, "cursor": "", "page_size": "100"},
                                        search=False)  # fmt: skip
                    await check(scope, {**shape, "cursor": first["next_cursor"]}, search=False)
            for fragment in ("bravo", "zzz", "br", "zz"):
                for sort in ("id_desc", "title_asc"):
                    shape = {"q": fragment, "sort": sort}
                    await check(scope, {**shape, "page": "1"}, search=True)
                    await check(scope, {**shape, "cursor": ""}, search=True)

    assert checked >= len(scopes) * len(SORT_ORDERS) * 3 * 4
    assert problems == [], "\n".join(problems)


async def test_a_page_looks_its_rows_up_by_id_in_a_table_of_one_small_account(
    tmp_path: Path,
) -> None:
    """3,000 tasks, all one owner's (the load benchmark's seed): a page's ids are looked
    up in the primary key, in a plan made for any values too. Joined to the page's ids,
    `tasks` was read whole into a hash, 1.15 ms a page against 0.5 (see `storage.among`)."""
    async with app_on_postgres(tmp_path) as app:
        client = app.test_client()
        admin = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        await insert_then_analyze(
            app,
            "INSERT INTO tasks (owner_id, title, done, version, created_at, updated_at) "
            "SELECT users.id, 'seed ' || n, n % 3 = 0, 1, now(), now() "
            "FROM generate_series(1, 3000) AS n, users WHERE users.username = 'admin'",
        )
        problems: list[str] = []
        for sort in SORT_ORDERS:
            url = f"/api/tasks?page=5&sort={sort}"
            with statements_run(app) as sent:
                response = await client.get(url, headers=admin)
            assert response.status_code == 200, url
            assert len((await response.get_json())["items"]) == 20, url
            statements = list_statements(sent)
            assert statements, f"{url}: no list statement seen"
            for statement, parameters in statements:
                plan = await explained(app, statement, parameters, generic=True)
                intended = list_index("admin", sort)
                allowed = {intended, PRIMARY_KEY, "pk_task_counts"}
                faulty = faults(plan, allowed, intended, search=False)
                problems.extend(f"{url}: {fault}" for fault in faulty)
    assert problems == [], "\n".join(problems)
