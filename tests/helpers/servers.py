"""Real things for the tests that need them: a throwaway database, a Hypercorn process."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx
from sqlalchemy import URL, make_url

from tests.helpers.support import TEST_DATABASE_URL, TEST_SECRET_KEY, require

CHECKOUT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def fresh_database_url(tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database on the backend under test."""
    if TEST_DATABASE_URL is None:
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    url = make_url(TEST_DATABASE_URL)
    name = f"qt_fresh_{uuid.uuid4().hex[:12]}"
    _postgres_admin(url, f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        if os.environ.get("DB_BEHIND_POOLER") == "true":
            _wait_until_pooler_is_done_with(url, name)
        _postgres_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


IN_USE = (
    "cl_active",
    "cl_waiting",
    "cl_active_cancel_req",
    "cl_waiting_cancel_req",
    "sv_active",
    "sv_active_cancel",
    "sv_being_canceled",
)
"""PgBouncer's counts, in SHOW POOLS, of the clients and cancel requests a pool still has."""


def _wait_until_pooler_is_done_with(url: URL, database: str, timeout: float = 15) -> None:
    """Return once the PgBouncer at `url` has no client and no cancel request for `database`.

    PgBouncer 1.18 (Debian 12's) can exit ("disconnect_client(): bad client state") when
    PostgreSQL ends its connections to a database, as a drop WITH (FORCE) does, while a
    client that cancelled a query there is still connected.
    """
    # psql, not asyncpg: the admin console answers only the simple query protocol.
    show_pools = ["psql", "-h", str(url.host), "-p", str(url.port), "-U", str(url.username)]
    show_pools += ["-d", "pgbouncer", "--csv", "-c", "SHOW POOLS"]
    deadline = time.monotonic() + timeout
    while True:
        pools = subprocess.run(show_pools, capture_output=True, text=True, check=True, timeout=10)
        every_pool = csv.DictReader(io.StringIO(pools.stdout))
        rows = [row for row in every_pool if row["database"] == database]
        if not any(int(row[count]) for row in rows for count in IN_USE):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"PgBouncer still serves {database}: {rows}")
        time.sleep(0.05)


LOCAL_POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


async def postgres_up() -> bool:
    try:
        connection = await asyncpg.connect(**LOCAL_POSTGRES, database="postgres", timeout=2)
    except (OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A throwaway database on the local PostgreSQL, whatever backend the suite runs on."""
    require(await postgres_up(), "PostgreSQL is not running at 127.0.0.1:5432")
    name = f"qt_pg_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(**LOCAL_POSTGRES, database="postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            admin = await asyncpg.connect(**LOCAL_POSTGRES, database="postgres", timeout=30)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


def _postgres_admin(url: URL, statement: str) -> None:
    """Run `statement` on the maintenance database; usable from sync and async tests alike."""
    with ThreadPoolExecutor(1) as thread:  # its own event loop, whatever the caller runs
        thread.submit(asyncio.run, _execute_on_postgres(url, statement)).result()


async def _execute_on_postgres(url: URL, statement: str) -> None:
    connection = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database="postgres"
    )
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environment(database_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "TEST_DATABASE_URL"}
    if env.get("EVENTS_LISTEN_URL"):  # behind a pooler: the direct way to this database
        direct = make_url(env["EVENTS_LISTEN_URL"]).set(database=make_url(database_url).database)
        env["EVENTS_LISTEN_URL"] = direct.render_as_string(hide_password=False)
    env.update(
        APP_ENV="development",
        DATABASE_URL=database_url,
        SECRET_KEY=TEST_SECRET_KEY,
        API_USER="admin",
        API_PASS="admin",
    )
    return env


def quart_tasks_serve(bind: str) -> list[str]:
    return [sys.executable, "-m", "quart_tasks", "serve", "--bind", bind]


def two_workers(bind: str) -> list[str]:
    return [*quart_tasks_serve(bind), "--workers", "2"]


async def all_tasks(http: httpx.AsyncClient, auth: dict[str, str]) -> list[dict[str, Any]]:
    """Every task the caller can see, page by page."""
    tasks: list[dict[str, Any]] = []
    page = 1
    while True:
        answer = await http.get("/api/tasks", params={"page": page, "page_size": 100}, headers=auth)
        assert answer.status_code == 200, answer.text
        tasks += answer.json()["items"]
        if len(tasks) >= answer.json()["total"]:
            return tasks
        page += 1


def hypercorn_asgi_app(bind: str) -> list[str]:
    return [sys.executable, "-m", "hypercorn", "asgi:app", "--bind", bind]


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


@contextlib.contextmanager
def running_server(
    database_url: str,
    cwd: Path,
    command: Callable[[str], list[str]] = quart_tasks_serve,
    **extra_env: str,
) -> Iterator[str]:
    """Migrate `database_url`, serve it with `command(bind)`, yield the base URL."""
    with served(database_url, cwd, command, **extra_env) as server:
        yield server.base_url


@contextlib.contextmanager
def served(
    database_url: str,
    cwd: Path,
    command: Callable[[str], list[str]] = quart_tasks_serve,
    **extra_env: str,
) -> Iterator[Server]:
    """Like `running_server`, with the process and its output at hand."""
    with _served(database_url, cwd, command, extra_env, "http", True) as server:
        yield server


@contextlib.contextmanager
def served_with_send_buffers(
    database_url: str, cwd: Path, send_buffer: int, **extra_env: str
) -> Iterator[Server]:
    """`served` on a socket made here, whose connections' kernel send buffers hold about
    `send_buffer` bytes (accepted sockets inherit it): a client that stops reading backs
    up into the server's own buffers within kilobytes, not the megabytes of autotuning."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    with (
        listener,
        _served(database_url, cwd, quart_tasks_serve, extra_env, "http", True, listener) as server,
    ):
        yield server


@contextlib.contextmanager
def served_over_tls(
    database_url: str, cwd: Path, command: Callable[[str], list[str]], trust: ssl.SSLContext
) -> Iterator[Server]:
    """`served`, for a command that serves HTTPS on a certificate `trust` trusts."""
    with _served(database_url, cwd, command, {}, "https", trust) as server:
        yield server


@contextlib.contextmanager
def _served(
    database_url: str,
    cwd: Path,
    command: Callable[[str], list[str]],
    extra_env: dict[str, str],
    scheme: str,
    verify: ssl.SSLContext | bool,
    listener: socket.socket | None = None,
) -> Iterator[Server]:
    """The server on a free port, or on `listener`, a listening socket it inherits."""
    env = {**server_environment(database_url), **extra_env}
    subprocess.run(
        [sys.executable, "-m", "quart_tasks", "migrate"],
        env=env,
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=60,
    )
    port = free_port() if listener is None else int(listener.getsockname()[1])
    base_url = f"{scheme}://127.0.0.1:{port}"
    bind = f"127.0.0.1:{port}" if listener is None else f"fd://{listener.fileno()}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command(bind),
            pass_fds=() if listener is None else (listener.fileno(),),
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as under a service manager
        )
        try:
            _wait_until_serving(base_url, process, log, timeout=30, verify=verify)
            yield Server(base_url, process, log)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def worker_pids(supervisor_pid: int) -> set[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # it exited while we looked
        if parent == supervisor_pid and b"spawn_main" in command:
            pids.add(int(entry.name))
    return pids


async def wait_for_workers(server: Server, count: int, without: int | None = None) -> set[int]:
    for _ in range(100):
        pids = worker_pids(server.process.pid)
        if len(pids) == count and without not in pids:
            return pids
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} workers, found {worker_pids(server.process.pid)}")


def _wait_until_serving(
    base_url: str,
    process: subprocess.Popen[bytes],
    log: IO[bytes],
    timeout: float,
    verify: ssl.SSLContext | bool = True,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")
            raise RuntimeError(f"the server exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{base_url}/openapi.json", timeout=1, verify=verify).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer within {timeout} s")
