"""Batches and syncs, as offline-first clients use them, on PostgreSQL through Hypercorn.

One server (`quart-tasks serve`, PostgreSQL, 10,000 seeded tasks), three
measurements, each side by side in alternating runs:

- an idle sync (a token with nothing new since) against a GET of one task,
  64 connections each (wrk): requests/s, latency and server CPU per request;
- a batch of 100 creates against single creates (S3), 64 connections each:
  tasks created a second;
- an incremental sync of 10,000 changes (patches to 10,000 tasks, sent as
  batches) in pages of 500: the time to read every page, and per page.

    .venv/bin/python bench/offline_clients.py [--runs 3] [--duration 8] [--workers 2]
        [--measure idle,sync,batch] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from load import (
    Result,
    Target,
    checkpoint,
    cpu_seconds,
    postgres,
    postgres_target,
    process_tree,
    quart_tasks_target,
    wrk,
)

CONNECTIONS = 64
POSTGRES_ONLY = argparse.Namespace(database="postgres")
CHANGES = 10_000
PAGE_SIZE = 500


def call(target: Target, method: str, path: str, body: Any = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        target.base_url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {target.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer: dict[str, Any] = json.load(response)
        return answer


def sync_to_the_end(
    target: Target, token: str | None, page_size: int
) -> tuple[str, list[float], int]:
    """Every page of one sync: the token to keep, each page's seconds, the tasks and ids read."""
    seconds, items = [], 0
    while True:
        query = f"?page_size={page_size}" + (f"&token={token}" if token else "")
        start = time.perf_counter()
        page = call(target, "GET", "/api/tasks/sync" + query)
        seconds.append(time.perf_counter() - start)
        items += len(page["tasks"]) + len(page["deleted"])
        token = page["next_token"]
        if not page["has_more"]:
            return token, seconds, items


def idle_token(target: Target) -> str:
    """A token with nothing new past it, checked."""
    token, _, _ = sync_to_the_end(target, None, 1000)
    time.sleep(0.5)  # the last writes' rounds
    token, _, _ = sync_to_the_end(target, token, 1000)
    again = call(target, "GET", f"/api/tasks/sync?token={token}")
    if again["tasks"] or again["deleted"] or again["next_token"] != token:
        raise RuntimeError("the idle sync found changes: is something writing?")
    return token


def measured(target: Target, script: str, duration: int, env: dict[str, str]) -> Result:
    checkpoint(POSTGRES_ONLY)  # the previous run's writes are not billed to this one
    before, database_before = cpu_seconds(process_tree(target.pid)), cpu_seconds(postgres())
    result = wrk(target.base_url, script, CONNECTIONS, duration, {**target.wrk_env, **env})
    requests = max(1.0, result.rps * duration)
    result.server_cpu_us = (cpu_seconds(process_tree(target.pid)) - before) / requests * 1e6
    result.database_cpu_us = (cpu_seconds(postgres()) - database_before) / requests * 1e6
    if result.non2xx or result.errors:
        raise RuntimeError(f"{script}: {result.non2xx} non-2xx answers, {result.errors} errors")
    return result


def line(label: str, result: Result, per_request: int = 1) -> str:
    return (
        f"{label:<22} rps={result.rps:8.0f} tasks/s={result.rps * per_request:8.0f} "
        f"p50_ms={result.p50_ms:7.1f} p99_ms={result.p99_ms:7.1f} "
        f"cpu_us_per_req={result.server_cpu_us:6.0f}+db {result.database_cpu_us:5.0f}"
    )


def idle_sync_against_get(target: Target, args: argparse.Namespace) -> None:
    print(f"\nidle sync against GET of one task, {CONNECTIONS} connections", flush=True)
    env = {"BENCH_SYNC_TOKEN": idle_token(target)}
    ratios, cpu_ratios = [], []
    for run in range(args.runs):
        get = measured(target, "get.lua", args.duration, {})
        sync = measured(target, "sync_idle.lua", args.duration, env)
        print(line(f"run {run + 1} GET task", get), flush=True)
        print(line(f"run {run + 1} idle sync", sync), flush=True)
        ratios.append(sync.rps / get.rps)
        cpu_ratios.append(sync.server_cpu_us / get.server_cpu_us)
    print(
        f"idle sync / GET: requests/s x{statistics.median(ratios):.2f} (median of "
        f"{', '.join(f'{r:.2f}' for r in ratios)}), server CPU per request "
        f"x{statistics.median(cpu_ratios):.2f}",
        flush=True,
    )


def batch_against_single_creates(target: Target, args: argparse.Namespace) -> None:
    print(f"\n100-create batches against single creates, {CONNECTIONS} connections", flush=True)
    ratios = []
    for run in range(args.runs):
        single = measured(target, "create.lua", args.duration, {})
        batch = measured(target, "batch.lua", args.duration, {"BENCH_NONCE": secrets.token_hex(6)})
        print(line(f"run {run + 1} single creates", single), flush=True)
        print(line(f"run {run + 1} batches of 100", batch, 100), flush=True)
        ratios.append(batch.rps * 100 / single.rps)
    print(
        f"batches / single creates: tasks/s x{statistics.median(ratios):.1f} (median of "
        f"{', '.join(f'{r:.1f}' for r in ratios)})",
        flush=True,
    )


def incremental_sync(target: Target, args: argparse.Namespace) -> None:
    print(f"\nincremental sync of {CHANGES:,} changes in pages of {PAGE_SIZE}", flush=True)
    lo, hi = target.id_range
    ids = list(range(lo, hi + 1))[:CHANGES]
    totals, pages = [], []
    for run in range(args.runs):
        token = idle_token(target)
        for start in range(0, len(ids), 100):
            commands = [
                {
                    "type": "patch",
                    "uuid": secrets.token_hex(8),
                    "id": task_id,
                    "args": {"title": f"changed {run} {task_id}"},
                }
                for task_id in ids[start : start + 100]
            ]
            call(target, "POST", "/api/tasks/batch", {"commands": commands})
        time.sleep(0.5)  # the last batches' rounds
        _, seconds, items = sync_to_the_end(target, token, PAGE_SIZE)
        if items != len(ids):
            raise RuntimeError(f"the sync read {items} tasks, not {len(ids)}")
        totals.append(sum(seconds))
        pages.extend(seconds)
        print(
            f"run {run + 1}: {len(seconds)} pages, {sum(seconds) * 1000:.0f} ms in all, "
            f"median page {statistics.median(seconds) * 1000:.1f} ms, "
            f"slowest {max(seconds) * 1000:.1f} ms",
            flush=True,
        )
    total = statistics.median(totals)
    print(
        f"incremental sync: {total * 1000:.0f} ms for {len(ids):,} changed tasks (median of "
        f"{args.runs}), {len(ids) / total:,.0f} tasks/s, median page "
        f"{statistics.median(pages) * 1000:.1f} ms",
        flush=True,
    )


MEASUREMENTS = {
    "idle": idle_sync_against_get,
    "sync": incremental_sync,
    "batch": batch_against_single_creates,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--measure", default="idle,sync,batch", help="which of idle, sync, batch (comma-separated)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="one short run of each: proves the script works"
    )
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.duration = 1, 2
    chosen = args.measure.split(",")
    server = postgres_target(args.workers, seed=CHANGES)
    with (
        tempfile.TemporaryDirectory() as workdir,
        quart_tasks_target(server, Path(workdir)) as target,
    ):
        measured(target, "get.lua", 2, {})  # warm up: imports, caches, connections
        for name, measurement in MEASUREMENTS.items():
            if name in chosen:
                measurement(target, args)


if __name__ == "__main__":
    main()
