"""A PostgreSQL restart in the middle of S5: what clients get, and how long nothing succeeds.

    .venv/bin/python bench/restart_drill.py                  # 30 s of S5, restart at 12 s
    .venv/bin/python bench/restart_drill.py --down 4 --duration 30

Serves quart-tasks as `load.py` does (2 workers, a fresh PostgreSQL database,
10,000 tasks), drives S5's mix (80% reads by id, 15% PATCH, 5% creates) from
64 connections in this process, and meanwhile stops the local cluster with a
fast shutdown, waits `--down` seconds and starts it again. Prints the answers
by status (and transport errors), and the longest stretch with no 2xx answer
beside how long the database was down. Needs root (pg_ctlcluster) and stops
every database of the cluster: run it on a machine of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # bench/load.py: the same server, database and seed

CONNECTIONS = 64


def cluster(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
    if action == "stop":
        command += ["-m", "fast"]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


async def postgres_up() -> bool:
    try:
        await load._postgres("SELECT 1")
    except Exception:  # refused, shutting down or starting up
        return False
    return True


Answers = list[tuple[float, str]]
"""Each answer as (seconds from the start, status or transport error)."""


async def drive(
    base_url: str,
    token: str,
    id_range: tuple[int, int],
    duration: float,
    disruption: Callable[[float], Awaitable[None]],
) -> Answers:
    """S5's mix from `CONNECTIONS` clients for `duration` seconds, while `disruption`
    (given the start, on the monotonic clock) runs beside them."""
    answers: Answers = []
    started = time.monotonic()
    lo, hi = id_range
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)

    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http:

        async def client(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() - started < duration:
                task_id = rng.randint(lo, hi)
                pick = rng.randrange(100)
                try:
                    if pick < 80:
                        answer = await http.get(f"/api/tasks/{task_id}", headers=headers)
                    elif pick < 95:
                        answer = await http.patch(
                            f"/api/tasks/{task_id}", json={"done": True}, headers=headers
                        )
                    else:
                        answer = await http.post(
                            "/api/tasks", json={"title": "mix", "done": False}, headers=headers
                        )
                    status = str(answer.status_code)
                except httpx.TransportError as error:
                    status = type(error).__name__
                answers.append((time.monotonic() - started, status))
                if not status.startswith("2"):
                    await asyncio.sleep(0.05)  # as a client honouring a short Retry-After

        await asyncio.gather(disruption(started), *(client(n) for n in range(CONNECTIONS)))
    return answers


async def restarted_database(
    target: load.Target, duration: float, restart_at: float, down: float
) -> tuple[Answers, float, float]:
    """The answers, and when the database went down and came up again."""
    went_down = came_up = 0.0

    async def restart(started: float) -> None:
        nonlocal went_down, came_up
        await asyncio.sleep(restart_at)
        went_down = time.monotonic() - started
        await asyncio.to_thread(cluster, "stop")
        await asyncio.sleep(down)
        await asyncio.to_thread(cluster, "start")
        for _ in range(1200):  # a minute at most
            if await postgres_up():
                break
            await asyncio.sleep(0.05)
        came_up = time.monotonic() - started

    answers = await drive(target.base_url, target.token, target.id_range, duration, restart)
    return answers, went_down, came_up


def longest_gap(answers: Answers) -> tuple[float, float]:
    """The longest stretch between two 2xx answers: its length and where it began."""
    successes = sorted(moment for moment, status in answers if status.startswith("2"))
    gaps = [(b - a, a) for a, b in itertools.pairwise(successes)]
    return max(gaps, default=(0.0, 0.0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--restart-at", type=float, default=12)
    parser.add_argument("--down", type=float, default=4, help="seconds the cluster stays down")
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args(argv)
    server = load.postgres_target(options.workers, seed=10_000)
    with (
        tempfile.TemporaryDirectory() as workdir,
        load.quart_tasks_target(server, Path(workdir)) as target,
    ):
        answers, went_down, came_up = asyncio.run(
            restarted_database(target, options.duration, options.restart_at, options.down)
        )
        log = (Path(workdir) / "quart-tasks.log").read_text(errors="replace")
    by_status = Counter(status for _, status in answers)
    gap, gap_start = longest_gap(answers)
    print(
        f"# S5 from {CONNECTIONS} connections for {options.duration:g} s, {options.workers} workers"
    )
    print(
        f"database down {went_down:.1f}-{came_up:.1f} s ({came_up - went_down:.1f} s: "
        f"stop -m fast, {options.down:g} s, start, until it answers)"
    )
    print(
        "answers: " + ", ".join(f"{status} x{count}" for status, count in sorted(by_status.items()))
    )
    print(f"longest gap without a 2xx: {gap:.2f} s, from {gap_start:.1f} s")
    print(f"tracebacks in the server's log: {log.count('Traceback')}")


if __name__ == "__main__":
    main()
