"""Load scenarios S1-S5 against quart-tasks under Hypercorn, and against the reference peers.

Each server gets a fresh database (PostgreSQL by default, or a SQLite file)
seeded with 10,000 tasks, then wrk drives the scenarios in turn and one line
per scenario reports requests/s, p50, p99, non-2xx answers, socket errors and
the server's RSS per worker. With --compare each scenario also runs against the
Flask and FastAPI peers of ../shared/peers, each started for its turn only,
then a table of ratios quart-tasks/peer follows. See bench/README.md.

    .venv/bin/python bench/load.py [--compare] [--workers 2] [--duration 8]
        [--database postgres|sqlite] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from chart import Series, write_chart

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent
PEERS = CHECKOUT.parent / "shared" / "peers"
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
PEER_NAMES = ("flask_seed", "fastapi_peer")
SMOKE_MIN_RPS = 10
"""A smoke run serves 90-280 requests/s a scenario here, beside CI's two suites; a
server that stalls must fail it."""
SCENARIOS = [  # name, connections, wrk script
    ("S1_get", 64, "get.lua"),
    ("S2_list", 64, "list.lua"),
    ("S3_create", 64, "create.lua"),
    ("S4_get_512conn", 512, "get.lua"),
    ("S5_mixed", 64, "mixed.lua"),
]
DIAGNOSTICS = [  # run only when named in --scenarios: one part of a mix on its own
    ("D1_patch", 64, "patch.lua"),
    ("D2_list_gzip", 64, "list_gzip.lua"),  # S2 with Accept-Encoding: gzip
]


@dataclass
class Result:
    scenario: str
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    errors: int
    connections: int
    server_cpu_us: float = 0.0  # server CPU time (user + system) per request
    database_cpu_us: float = 0.0  # PostgreSQL's, all its processes

    @property
    def little_mean_ms(self) -> float:
        """The mean latency Little's law gives a closed loop of `connections` clients."""
        return self.connections / self.rps * 1000 if self.rps else math.inf

    @property
    def fairness(self) -> float:
        """p99 over the Little's-law mean: how far the slowest 1% wait past the mean."""
        return self.p99_ms / self.little_mean_ms


@dataclass
class Run:
    target: str
    results: list[Result] = field(default_factory=list)
    rss_mib_per_worker: float = 0.0


# --- databases ---------------------------------------------------------------


@contextmanager
def database(kind: str, workdir: Path, label: str) -> Iterator[str]:
    """A fresh, empty database; yields a URL without a driver (`postgresql://…`, `sqlite:///…`)."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / f'{label}.db'}"
        return
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_postgres(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _postgres(statement: str, database_name: str = "postgres", *args: object) -> object:
    connection = await asyncpg.connect(**POSTGRES, database=database_name)
    try:
        return await connection.fetch(statement, *args)
    finally:
        await connection.close()


def with_driver(url: str, driver: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}+{driver}://{rest}"


def migrated(url: str, admin_password: str, **settings: str) -> dict[str, str]:
    """Migrate `url` for quart-tasks; the environment to serve it with, in production mode."""
    driver = "aiosqlite" if url.startswith("sqlite") else "asyncpg"
    env = {
        **os.environ,
        "APP_ENV": "production",
        "DATABASE_URL": with_driver(url, driver),
        "SECRET_KEY": secrets.token_urlsafe(48),
        "API_USER": "admin",
        "API_PASS": admin_password,
        "ALLOW_SQLITE_IN_PRODUCTION": "true",
        **settings,
    }
    subprocess.run(
        [sys.executable, "-m", "quart_tasks", "migrate"],
        env=env,
        cwd=CHECKOUT,
        check=True,
        capture_output=True,
    )
    return env


def seed(url: str, tasks: int, owner_id: int | None) -> None:
    """`tasks` rows straight into the tasks table (an API-neutral, fast seed)."""
    now = datetime.now(UTC) - timedelta(days=1)
    owner = {"owner_id": owner_id} if owner_id is not None else {}
    rows: list[dict[str, Any]] = [
        {
            **owner,
            "title": f"seed {n}",
            "done": n % 3 == 0,
            "created_at": now + timedelta(milliseconds=n),
        }
        for n in range(tasks)
    ]
    columns = [*owner, "title", "done", "created_at", "updated_at"]
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            connection.executemany(
                f"INSERT INTO tasks ({', '.join(columns)}) VALUES ({','.join('?' * len(columns))})",
                [
                    (
                        *[row[c] for c in columns[:-2]],
                        _sqlite_time(row["created_at"]),
                        _sqlite_time(row["created_at"]),
                    )
                    for row in rows
                ],
            )
        return

    async def insert() -> None:
        # In SQL, so the server casts the times to whatever the table declares.
        owner_column, owner_value = (
            (", owner_id", f", {owner_id}") if owner_id is not None else ("", "")
        )
        connection = await asyncpg.connect(**POSTGRES, database=url.rsplit("/", 1)[1])
        try:
            await connection.execute(
                f"INSERT INTO tasks (title, done, created_at, updated_at{owner_column}) "
                "SELECT 'seed ' || n, n % 3 = 0, "
                "now() - interval '1 day' + n * interval '1 millisecond', "
                "now() - interval '1 day' + n * interval '1 millisecond'"
                f"{owner_value} FROM generate_series(0, {int(tasks) - 1}) AS n"
            )
            await connection.execute("ANALYZE tasks")
        finally:
            await connection.close()

    asyncio.run(insert())


def _sqlite_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


# --- servers ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post_json(url: str, body: Mapping[str, object], token: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, Any] = json.load(response)
        return result


def wait_until_up(base_url: str, process: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{base_url}: the server exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"{base_url}/api/tasks", timeout=1)
        except urllib.error.HTTPError:
            return  # 401: it answers
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{base_url} did not come up")


@contextmanager
def running(
    command: list[str], env: dict[str, str], cwd: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def process_tree(root_pid: int) -> list[int]:
    """`root_pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(status.parent.name))
    pending, tree = [root_pid], []
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending += children.get(pid, [])
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes and their exited children have used so far."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(field) for field in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres() -> list[int]:
    """The local PostgreSQL's processes (server and backends)."""
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().startswith("postgres"):
                pids.append(int(comm.parent.name))
        except OSError:
            continue
    return pids


def worker_pids(root_pid: int) -> list[int]:
    """The server's worker processes: those started by multiprocessing's spawn."""
    workers = []
    for pid in process_tree(root_pid)[1:]:
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.append(pid)
        except OSError:
            continue
    return workers


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mib_per_worker(root_pid: int) -> float:
    """The largest RSS among the server's processes (its workers), in MiB."""
    return max((rss_kib(pid) / 1024 for pid in process_tree(root_pid)), default=0.0)


# --- load -----------------------------------------------------------------------


def wrk(base_url: str, script: str, connections: int, seconds: int, env: dict[str, str]) -> Result:
    output = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            "--latency",
            "-s",
            str(HERE / "wrk" / script),
            base_url,
        ],
        env={**os.environ, **env, "BENCH_WRK_DIR": str(HERE / "wrk")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        return (
            float(match.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[match.group(2)]
            if match
            else float("nan")
        )

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return Result(
        scenario="",
        rps=rps,
        p50_ms=ms("50%"),
        p99_ms=ms("99%"),
        non2xx=int(non2xx.group(1)) if non2xx else 0,
        errors=sum(map(int, sockets.groups())) if sockets else 0,
        connections=connections,
    )


@dataclass
class Target:
    """A server up and seeded, ready for the scenarios."""

    name: str
    base_url: str
    token: str
    id_range: tuple[int, int]
    pid: int
    run: Run

    @property
    def wrk_env(self) -> dict[str, str]:
        return {
            "BENCH_TOKEN": self.token,
            "BENCH_LO": str(self.id_range[0]),
            "BENCH_HI": str(self.id_range[1]),
        }


def checkpoint(args: argparse.Namespace) -> None:
    """Before each measurement, so that the previous server's writes are not billed to the
    next. Done before a peer starts: serving, the FastAPI peer's pools and quart-tasks'
    hold all of PostgreSQL's 100 connections."""
    if args.database == "postgres":
        asyncio.run(_postgres("CHECKPOINT"))


def measure(target: Target, scenario: tuple[str, int, str], args: argparse.Namespace) -> None:
    """One scenario against one target: its line printed, its result kept in `target.run`."""
    name, all_connections, script = scenario
    connections = max(1, all_connections // args.connection_divisor)
    pid = target.pid
    server_before, database_before = cpu_seconds(process_tree(pid)), cpu_seconds(postgres())
    with profiled(args.profile, f"{target.name}-{name}", pid, args.duration):
        result = wrk(target.base_url, script, connections, args.duration, target.wrk_env)
    requests = max(1.0, result.rps * args.duration)
    result.server_cpu_us = (cpu_seconds(process_tree(pid)) - server_before) / requests * 1e6
    result.database_cpu_us = (cpu_seconds(postgres()) - database_before) / requests * 1e6
    result.scenario = name
    target.run.results.append(result)
    print(result_line(target.name, result, rss_mib_per_worker(pid)), flush=True)


def result_line(target: str, result: Result, rss_mib: float) -> str:
    """One scenario's figures, as `bench/ab.py` reads them back."""
    return (
        f"{target:<12} {result.scenario:<15} rps={result.rps:7.0f} p50_ms={result.p50_ms:7.1f} "
        f"p99_ms={result.p99_ms:7.1f} non2xx={result.non2xx} errors={result.errors} "
        f"rss_mib={rss_mib:.0f} cpu_us_per_req={result.server_cpu_us:.0f}"
        f"+db {result.database_cpu_us:.0f} fairness={result.fairness:.2f}"
    )


@contextmanager
def profiled(directory: Path | None, label: str, root_pid: int, seconds: int) -> Iterator[None]:
    """With a directory, record each server process with py-spy meanwhile (collapsed stacks)."""
    if directory is None:
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    recorders = [
        subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--rate",
                "250",
                "--duration",
                str(seconds),
                "--nonblocking",
                "--output",
                str(directory / f"{label}-{pid}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in worker_pids(root_pid)
    ]
    try:
        yield
    finally:
        for recorder in recorders:
            recorder.wait()


def warm_up(target: Target, args: argparse.Namespace) -> None:
    """Two seconds of S1, unmeasured: first requests pay for imports, caches and connections."""
    wrk(target.base_url, "get.lua", max(1, 64 // args.connection_divisor), 2, target.wrk_env)


def id_range(base_url: str, token: str) -> tuple[int, int]:
    def first(sort: str) -> int:
        request = urllib.request.Request(
            f"{base_url}/api/tasks?sort={sort}&page_size=1",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(json.load(response)["items"][0]["id"])

    return first("id_asc"), first("id_desc")


# --- targets --------------------------------------------------------------------


def postgres_target(workers: int, seed: int) -> argparse.Namespace:
    """The options `quart_tasks_target` reads, for another benchmark's server: PostgreSQL,
    direct, default settings."""
    return argparse.Namespace(
        database="postgres",
        seed=seed,
        workers=workers,
        server_env=[],
        hypercorn_config=None,
        pooler=None,
    )


@contextmanager
def quart_tasks_target(args: argparse.Namespace, workdir: Path) -> Iterator[Target]:
    with database(args.database, workdir, "quart") as url:
        password = secrets.token_urlsafe(16)
        env = migrated(
            url,
            password,
            LOGIN_FAILURES_PER_ADDRESS="1000/minute",
            **dict(setting.split("=", 1) for setting in args.server_env),
        )
        seed(url, args.seed, owner_id=1)
        if args.pooler:
            # Served through a PgBouncer already listening there, in front of the same
            # server; LISTEN keeps its direct connection.
            env["EVENTS_LISTEN_URL"] = env["DATABASE_URL"]
            env["DATABASE_URL"] = env["DATABASE_URL"].replace(
                "@127.0.0.1:5432/", f"@127.0.0.1:{args.pooler}/"
            )
            env["DB_BEHIND_POOLER"] = "true"
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "quart_tasks",
            "serve",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            *(["--config", str(args.hypercorn_config)] if args.hypercorn_config else []),
        ]
        with running(command, env, CHECKOUT, workdir / "quart-tasks.log") as process:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_up(base_url, process)
            token = str(
                post_json(f"{base_url}/api/login", {"username": "admin", "password": password})[
                    "access_token"
                ]
            )
            yield Target(
                "quart-tasks",
                base_url,
                token,
                id_range(base_url, token),
                process.pid,
                Run("quart-tasks"),
            )


@dataclass
class Peer:
    """A peer with its database made and seeded; it serves only while it is measured.

    Up beside quart-tasks the whole run, the FastAPI peer's pools (up to 80 connections,
    held once opened) and quart-tasks' (20) take all of PostgreSQL's 100, and whoever
    asks next is refused.
    """

    name: str
    env: dict[str, str]
    workdir: Path
    workers: int
    run: Run

    @contextmanager
    def serving(self) -> Iterator[Target]:
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        with running(
            ["bash", str(PEERS / self.name / "run.sh"), str(port), *self.workers_args()],
            self.env,
            self.workdir,
            self.workdir / f"{self.name}-{len(self.run.results)}.log",
        ) as process:
            wait_until_up(base_url, process)
            token = str(
                post_json(f"{base_url}/api/login", {"username": "admin", "password": "admin"})[
                    "access_token"
                ]
            )
            yield Target(
                self.name, base_url, token, id_range(base_url, token), process.pid, self.run
            )
            self.run.rss_mib_per_worker = max(
                self.run.rss_mib_per_worker, rss_mib_per_worker(process.pid)
            )

    def workers_args(self, workers: int | None = None) -> list[str]:
        count = str(workers or self.workers)
        return ["-w", count] if self.name == "flask_seed" else ["--workers", count]


@contextmanager
def prepared_peer(name: str, args: argparse.Namespace, workdir: Path) -> Iterator[Peer]:
    with database(args.database, workdir, name) as url:
        driver = "psycopg2" if name == "flask_seed" else "asyncpg"
        if url.startswith("sqlite"):
            driver = "aiosqlite" if name == "fastapi_peer" else ""
        database_url = with_driver(url, driver) if driver else url
        peer = Peer(
            name, {**os.environ, "DATABASE_URL": database_url}, workdir, args.workers, Run(name)
        )
        # One worker, alone, creates the table; the seed follows.
        port = free_port()
        with running(
            ["bash", str(PEERS / name / "run.sh"), str(port), *peer.workers_args(1)],
            peer.env,
            workdir,
            workdir / f"{name}-setup.log",
        ) as process:
            wait_until_up(f"http://127.0.0.1:{port}", process)
        seed(url, args.seed, owner_id=None)
        yield peer


def not_2xx_summary(server_log: Path) -> str:
    """quart-tasks' answers other than 2xx, by method, route and status, and its first
    warnings and errors. `GET /api/tasks 401` is the script's own check that it is up."""
    answers: Counter[str] = Counter()
    errors: list[str] = []
    for line in server_log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        status = record.get("status")
        if isinstance(status, int) and not 200 <= status < 300:
            answers[f"{record.get('method')} {record.get('route')} {status}"] += 1
        elif record.get("level") in ("warning", "error", "critical") and len(errors) < 5:
            errors.append(line[:400])
    counted = ", ".join(f"{what}: {n}" for what, n in answers.most_common()) or "none logged"
    return "\n".join([f"quart-tasks answers other than 2xx: {counted}", *errors])


def print_ratios(ours: Run, peers: list[Run]) -> None:
    print("\nratios quart-tasks / peer (requests/s; p99 in ms):")
    header = f"{'scenario':<16}{'quart-tasks':>12}" + "".join(
        f"{p.target:>14}{'ratio':>7}" for p in peers
    )
    print(header + f"{'vs best':>9}")
    for index, result in enumerate(ours.results):
        line = f"{result.scenario:<16}{result.rps:>12.0f}"
        best = max(p.results[index].rps for p in peers)
        for peer in peers:
            other = peer.results[index]
            line += f"{other.rps:>14.0f}{result.rps / other.rps:>7.2f}"
        print(line + f"{result.rps / best:>9.2f}")
    print(
        "p99 ms: "
        + "; ".join(
            f"{r.scenario} {r.p99_ms:.0f} ("
            + ", ".join(f"{p.target} {p.results[i].p99_ms:.0f}" for p in peers)
            + ")"
            for i, r in enumerate(ours.results)
        )
    )
    for little in ours.results:
        if little.scenario.startswith("S4"):
            print(
                f"S4 fairness: p99 {little.p99_ms:.0f} ms = {little.fairness:.2f} x "
                f"the mean by Little's law ({little.little_mean_ms:.0f} ms)"
            )
    print(
        f"RSS per worker (MiB): quart-tasks {ours.rss_mib_per_worker:.0f}; "
        + ", ".join(f"{p.target} {p.rss_mib_per_worker:.0f}" for p in peers)
    )


PEER_LABELS = {"flask_seed": "Flask (gunicorn)", "fastapi_peer": "FastAPI (uvicorn)"}


def draw_standing(path: Path, ours: Run, peers: list[Run], args: argparse.Namespace) -> None:
    """The run's figures as bench/chart.py's SVG, captioned with what was run."""
    series = [
        Series(
            PEER_LABELS.get(run.target, run.target),
            [result.rps for result in run.results],
            [result.p99_ms for result in run.results],
        )
        for run in [ours, *peers]
    ]
    commit = subprocess.run(
        ["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    caption = (
        f"bench/load.py --compare, {datetime.now(UTC):%Y-%m-%d}, commit {commit or '?'}, "
        f"{args.database}, {args.workers} workers, {args.duration} s a scenario"
    )
    scenarios = [result.scenario.split("_")[0] for result in ours.results]
    write_chart(path, scenarios, series, caption)
    print(f"chart: {path}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=int, default=8, help="seconds per scenario")
    parser.add_argument("--seed", type=int, default=10_000)
    parser.add_argument(
        "--compare", action="store_true", help="also run the peers, then print ratios"
    )
    parser.add_argument(
        "--hypercorn-config", type=Path, help="a Hypercorn TOML file for quart-tasks serve"
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for quart-tasks (repeatable), e.g. AUTH_CACHE_SECONDS=0",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record every worker with py-spy during each scenario, as collapsed stacks in DIR",
    )
    parser.add_argument(
        "--scenarios",
        type=lambda names: names.upper().split(","),
        default=[],
        metavar="S1,S3",
        help="run only these scenarios (default: S1-S5; D1, a PATCH alone, only by name)",
    )
    parser.add_argument(
        "--chart",
        type=Path,
        metavar="SVG",
        help="with --compare, draw requests/s and p99 per scenario against the peers here",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="a quick run that only proves the script works"
    )
    parser.add_argument(
        "--pooler",
        type=int,
        metavar="PORT",
        help="serve quart-tasks through the PgBouncer listening on this local port "
        "(transaction mode, in front of the local PostgreSQL)",
    )
    args = parser.parse_args()
    args.connection_divisor = 1
    if args.smoke:
        args.database, args.workers, args.duration, args.seed = "sqlite", 1, 2, 200
        args.connection_divisor = 8
    scenarios = (
        [s for s in [*SCENARIOS, *DIAGNOSTICS] if s[0].split("_")[0] in args.scenarios]
        if args.scenarios
        else SCENARIOS
    )
    with (
        tempfile.TemporaryDirectory(prefix="quart-tasks-bench-") as tmp,
        ExitStack() as servers,
    ):
        workdir = Path(tmp)
        print(
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {args.database}, {args.workers} workers, "
            f"{args.duration} s a scenario, {args.seed} tasks",
            flush=True,
        )
        ours = servers.enter_context(quart_tasks_target(args, workdir))
        peers = (
            [servers.enter_context(prepared_peer(name, args, workdir)) for name in PEER_NAMES]
            if args.compare and not args.smoke
            else []
        )
        warm_up(ours, args)
        # Scenario by scenario, each server in turn: what drifts on a shared machine over
        # the minutes of a run then hits every server's figures for a scenario alike.
        for scenario in scenarios:
            checkpoint(args)
            measure(ours, scenario, args)
            for peer in peers:
                checkpoint(args)
                with peer.serving() as target:
                    warm_up(target, args)
                    measure(target, scenario, args)
        ours.run.rss_mib_per_worker = rss_mib_per_worker(ours.pid)
        if any(result.non2xx for result in ours.run.results):
            print(not_2xx_summary(workdir / "quart-tasks.log"), flush=True)
        if args.smoke:
            failed = [
                r.scenario
                for r in ours.run.results
                if r.rps < SMOKE_MIN_RPS or r.non2xx or r.errors
            ]
            if failed:
                sys.exit(
                    f"smoke run failed in {failed}; server log:\n"
                    + (workdir / "quart-tasks.log").read_text()[-3000:]
                )
            return
        if args.compare:
            print_ratios(ours.run, [peer.run for peer in peers])
            if args.chart is not None:
                draw_standing(args.chart, ours.run, [peer.run for peer in peers], args)


if __name__ == "__main__":
    main()
