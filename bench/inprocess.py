"""The app's own CPU per request, in process, without an HTTP server in the way.

    .venv/bin/python bench/inprocess.py                          # every scenario, this checkout
    .venv/bin/python bench/inprocess.py --a-rev HEAD~1 --b-rev HEAD --scenario patch
    .venv/bin/python bench/inprocess.py --smoke                  # what CI runs

Seeds a throwaway PostgreSQL database as `load.py` does (10,000 tasks, one
owner), starts the app as Hypercorn would (before/after serving), and calls
its ASGI entry point directly: 32 requests at a time, each with an access
token, `--requests` of them per round. Each round prints the process CPU
time per request, which includes the app, SQLAlchemy, asyncpg and the event
loop, but not Hypercorn's parsing and socket writes (about 400 µs of a
read's 900 under `load.py`). A change to the app shows here more sharply
than in `load.py`, whose CPU figures carry Hypercorn and the load generator's
noise; the end-to-end effect still needs `ab.py`.

With `--a-rev`/`--b-rev` each side's app comes from a temporary worktree of
that commit; runs alternate A, B, A, B... and the medians are compared B/A.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from ab import CHECKOUT, worktree  # noqa: E402
from load import database, migrated, seed  # noqa: E402

SCENARIOS = ("get", "list", "create", "patch")
CONCURRENCY = 32
TASKS = 10_000
LINE = re.compile(r"^(\w+) cpu_us_per_req=(\d+) rps=(\d+)$")

Send = Callable[[dict[str, Any]], Awaitable[None]]


def request_for(scenario: str) -> tuple[str, str, bytes, dict[str, Any] | None]:
    """Method, path, query string and JSON body of one request of `scenario`."""
    task_url = f"/api/tasks/{random.randint(1, TASKS)}"
    return {
        "get": ("GET", task_url, b"", None),
        "list": ("GET", "/api/tasks", b"page=5&page_size=20", None),
        "create": ("POST", "/api/tasks", b"", {"title": "bench"}),
        "patch": ("PATCH", task_url, b"", {"done": True}),
    }[scenario]


async def call(app: Any, token: str, scenario: str) -> int:
    """One request straight into the ASGI app; its status."""
    method, path, query, body = request_for(scenario)
    data = json.dumps(body).encode() if body is not None else b""
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]
    if body is not None:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "extensions": {},
    }
    delivered = False
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": data, "more_body": False}
        await asyncio.Event().wait()  # the client stays; the app never needs more
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    return statuses[0]


def tune_as_a_worker(app: Any) -> None:
    """Tune this process as a serving worker tunes its own (`serving.tuning`), so that CPU
    per request is a worker's. A revision from before that module tuned the process as
    its app started, and needs nothing here."""
    try:
        from quart_tasks.serving.tuning import ProcessTuning
    except ImportError:
        return
    ProcessTuning(gc_gen0_threshold=app.config["GC_GEN0_THRESHOLD"]).apply()


async def measure(scenarios: list[str], requests: int, rounds: int, password: str) -> None:
    from quart_tasks import create_app

    app = create_app()
    async with app.test_app():
        tune_as_a_worker(app)
        login = await app.test_client().post(
            "/api/login", json={"username": "admin", "password": password}
        )
        token = (await login.get_json())["access_token"]
        slots = asyncio.Semaphore(CONCURRENCY)

        async def one(scenario: str) -> None:
            async with slots:
                status = await call(app, token, scenario)
            if status >= 300:
                raise RuntimeError(f"{scenario}: answered {status}")

        for scenario in scenarios:
            await asyncio.gather(*(one(scenario) for _ in range(min(requests, 300))))  # warm up
            for _ in range(rounds):
                cpu, wall = time.process_time(), time.perf_counter()
                await asyncio.gather(*(one(scenario) for _ in range(requests)))
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                print(
                    f"{scenario} cpu_us_per_req={cpu / requests * 1e6:.0f} "
                    f"rps={requests / wall:.0f}",
                    flush=True,
                )


def measure_in_child(checkout: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    """One run, in a process that imports the app from `checkout`."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--measure",
        "--requests",
        str(args.requests),
        "--rounds",
        str(args.rounds),
        *[f"--scenario={scenario}" for scenario in args.scenario],
    ]
    environment = {**os.environ, "PYTHONPATH": str(checkout)}
    output = subprocess.run(
        command, cwd=checkout, env=environment, capture_output=True, text=True, check=True
    ).stdout
    figures: dict[str, list[float]] = defaultdict(list)
    for match in map(LINE.match, output.splitlines()):
        if match:
            figures[match.group(1)].append(float(match.group(2)))
    return figures


def seeded_and_measured(args: argparse.Namespace) -> None:
    """The child's side: a fresh seeded database, then the rounds."""
    with (
        tempfile.TemporaryDirectory() as workdir,
        database("postgres", Path(workdir), "inproc") as url,
    ):
        password = secrets.token_urlsafe(16)
        os.environ.update(migrated(url, password, LOG_FORMAT="json"))
        seed(url, TASKS, owner_id=1)
        asyncio.run(measure(args.scenario, args.requests, args.rounds, password))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scenario", action="append", choices=SCENARIOS)
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3, help="runs per side")
    parser.add_argument("--a-rev", metavar="REVISION")
    parser.add_argument("--b-rev", metavar="REVISION")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.scenario = args.scenario or list(SCENARIOS)
    if args.smoke:
        args.requests, args.rounds, args.runs = 50, 1, 1
    if args.measure:
        seeded_and_measured(args)
        return

    comparing = args.a_rev is not None or args.b_rev is not None
    sides = ("A", "B") if comparing else ("this checkout",)
    figures: dict[str, dict[str, list[float]]] = {side: defaultdict(list) for side in sides}
    with ExitStack() as stack:
        trees = {
            "A": stack.enter_context(worktree(args.a_rev)),
            "B": stack.enter_context(worktree(args.b_rev)),
            "this checkout": CHECKOUT,
        }
        for _ in range(args.runs):
            for side in sides:
                for scenario, values in measure_in_child(trees[side], args).items():
                    figures[side][scenario].extend(values)
    print(f"CPU µs per request in process, medians of {args.runs} run(s) x {args.rounds} rounds")
    for scenario in args.scenario:
        medians = {side: statistics.median(figures[side][scenario]) for side in sides}
        line = "  ".join(f"{side} {value:6.0f}" for side, value in medians.items())
        if comparing:
            line += f"  B/A {medians['B'] / medians['A']:.2f}"
        print(f"{scenario:8s} {line}")


if __name__ == "__main__":
    main()
