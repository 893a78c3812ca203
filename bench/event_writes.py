"""How many changes with their events PostgreSQL commits a second, driven by pgbench.

    .venv/bin/python bench/event_writes.py --runs 3 --seconds 10
    cd <a worktree of another revision> && PYTHONPATH=. <this venv>/bin/python \\
        <this checkout>/bench/event_writes.py   # the same figures for that revision's code

The statements are the app's own, rendered from the code that is imported:
`event` is the insert of one event as a transaction writes it
(`records.record_deletion`'s), `change` a PATCH's task change with its event as
one statement (`writes.update_with_event` on `statements.change`), and
`insert` a plain one-row insert into `task_events`, for scale. Where the code
positions events in rounds (`tasks.log.rounds`), one more pgbench client takes
rounds meanwhile, as the processes' sequencers would, and its rounds a second
are shown. Scenarios alternate, run after run; the table shows each one's
median transactions a second.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sqlalchemy import literal, make_url, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.sql import ClauseElement

from quart_tasks.models import Base
from quart_tasks.tasks.log import records
from quart_tasks.tasks.store import statements, writes

TASKS = 10_000
CLIENTS = 32
DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
ROUND_PAUSE_MS = 2
TPS = re.compile(r"^tps = ([\d.]+)", re.MULTILINE)

# What each of the app's named values becomes in pgbench: a variable, or SQL that
# differs on every run of the script.
CHANGE_VALUES = {
    "new_title": "('t' || :r)",
    "task_id": ":task",
    "caller_id": "1",
    "now": "statement_timestamp()",
}
SCRIPT_VARIABLES = "\\set task random(1, {tasks})\n\\set r random(1, 1000000000)\n"


def pgbench_sql(
    statement: ClauseElement, named: Mapping[str, str], values: Mapping[str, Any] | None = None
) -> str:
    """`statement` as one line of pgbench SQL: `named` values as given in SQL, the others
    as literals of `values` or of the statement's own."""
    compiled = statement.compile(dialect=DIALECT)
    sql = compiled.string
    for name, value in compiled.params.items():
        if name in named:
            replacement = named[name]
        else:
            rendered = literal((values or {}).get(name, value)).compile(
                dialect=DIALECT, compile_kwargs={"literal_binds": True}
            )
            replacement = str(rendered)
        sql = sql.replace(f"%({name})s", replacement)
    return _colons_spelled_out(" ".join(sql.split())) + ";\n"


def _colons_spelled_out(sql: str) -> str:
    """pgbench reads `:name` as a variable even inside a string constant (the timestamps'
    `HH24:MI:SS`): such a colon becomes `chr(58)`, joined to the rest of the string."""
    parts = sql.split("'")
    for inside in range(1, len(parts), 2):
        parts[inside] = re.sub(r":(?=[A-Za-z_])", "' || chr(58) || '", parts[inside])
    return "'".join(parts)


def change_script() -> str:
    change = statements.task_update(("title",), any_owner=False, check_version=False)
    statement, values = writes.update_with_event(change, {})
    return SCRIPT_VARIABLES.format(tasks=TASKS) + pgbench_sql(statement, CHANGE_VALUES, values)


EVENT_VALUES = {
    "type": "'task.deleted'",
    "task_id": ":task",
    "owner_id": "1",
    "payload": "'{}'",
    "created_at": "statement_timestamp()",
}


def event_script() -> str:
    insert_event: Any = records._insert_event
    try:
        statement = insert_event()
    except TypeError:  # code whose insert differs by dialect
        statement = insert_event(postgresql=True)
    values = {"lock_key": getattr(records, "ORDER_LOCK_KEY", None)}
    return SCRIPT_VARIABLES.format(tasks=TASKS) + pgbench_sql(statement, EVENT_VALUES, values)


def insert_script() -> str:
    return SCRIPT_VARIABLES.format(tasks=TASKS) + (
        "INSERT INTO task_events (type, task_id, owner_id, payload, created_at)"
        " VALUES ('task.updated', :task, 1, '{}', statement_timestamp());\n"
    )


def round_script() -> str | None:
    """A round as `rounds.take_round` takes it, or None where the code has no rounds."""
    try:
        from quart_tasks.tasks.log import rounds
    except ImportError:
        return None
    return pgbench_sql(rounds.ROUND, {}) + f"\\sleep {ROUND_PAUSE_MS} ms\n"


async def prepare(url: str) -> None:
    admin = create_async_engine(
        make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    database = make_url(url).database
    async with admin.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
        await connection.execute(text(f'CREATE DATABASE "{database}"'))
    await admin.dispose()
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
        await connection.execute(
            text(
                "INSERT INTO users (id, username, username_key, password_hash, role, created_at)"
                " VALUES (1, 'bench', 'bench', 'x', 'user', now())"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO tasks (owner_id, title, done, version, created_at, updated_at)"
                f" SELECT 1, 't' || n, false, 1, now(), now() FROM generate_series(1, {TASKS}) n"
            )
        )
    await engine.dispose()


def pgbench(url: str, script: Path, clients: int, seconds: float) -> subprocess.Popen[str]:
    parsed = make_url(url)
    command = [
        "pgbench",
        "--no-vacuum",
        f"--client={clients}",
        f"--jobs={min(clients, 2)}",
        f"--time={seconds:g}",
        "--protocol=prepared",
        f"--host={parsed.host or '127.0.0.1'}",
        f"--port={parsed.port or 5432}",
        f"--username={parsed.username or 'postgres'}",
        f"--file={script}",
        parsed.database or "postgres",
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def tps(process: subprocess.Popen[str]) -> float:
    output, _ = process.communicate()
    found = TPS.search(output)
    if process.returncode != 0 or found is None:
        raise SystemExit(f"pgbench failed:\n{output}")
    return float(found.group(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/quart_tasks_event_writes",
        help="a database to drop and create (default: %(default)s)",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--smoke", action="store_true", help="one short run of each, to check")
    options = parser.parse_args(argv)
    if shutil.which("pgbench") is None:
        raise SystemExit("pgbench is not installed (Debian: postgresql-client)")
    if options.smoke:
        options.runs, options.seconds = 1, 1
    asyncio.run(prepare(options.database_url))
    rounds = round_script()
    figures: dict[str, list[float]] = {"insert": [], "event": [], "change": []}
    round_rates: list[float] = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        scripts: dict[str, Any] = {
            "insert": insert_script(),
            "event": event_script(),
            "change": change_script(),
        }
        paths = {}
        for name, script in {**scripts, "round": rounds}.items():
            if script is not None:
                paths[name] = folder / f"{name}.sql"
                paths[name].write_text(script)
        for run in range(options.runs):
            for name in figures:
                taking = None
                if name != "insert" and rounds is not None:
                    taking = pgbench(options.database_url, paths["round"], 1, options.seconds + 1)
                figures[name].append(
                    tps(pgbench(options.database_url, paths[name], CLIENTS, options.seconds))
                )
                if taking is not None:
                    round_rates.append(tps(taking))
                print(f"run {run + 1}: {name} {figures[name][-1]:.0f} tps", file=sys.stderr)
    print(f"{'scenario':<10} {'clients':>7} {'median tps':>11}  runs")
    for name, values in figures.items():
        runs = " ".join(f"{value:.0f}" for value in values)
        print(f"{name:<10} {CLIENTS:>7} {statistics.median(values):>11.0f}  {runs}")
    if round_rates:
        rate = statistics.median(round_rates)
        print(f"rounds taken alongside `event` and `change`: {rate:.0f}/s (median)")
    else:
        print("this code takes no rounds: `event` and `change` take the order lock")


if __name__ == "__main__":
    main()
