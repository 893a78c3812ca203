"""Live-change fan-out: N SSE subscribers on one Hypercorn worker, changes at a steady rate.

For each N it prints delivery latency (p50/p99/max, from just before the change
was sent to receipt by a subscriber, so an upper bound on commit-to-receipt),
the worker's RSS per subscriber, and the worker's CPU per delivered event.

    .venv/bin/python bench/live.py                      # N = 1,000 and 5,000, PostgreSQL
    .venv/bin/python bench/live.py --subscribers 200 --database sqlite
    .venv/bin/python bench/live.py --smoke              # seconds: proves the script works

The subscribers are asyncio sockets in this process, on the same cores as the
server, as the figures in docs/performance/15-live-fan-out-and-the-collector.md were measured.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from load import (
    CHECKOUT,
    cpu_seconds,
    database,
    free_port,
    migrated,
    post_json,
    rss_kib,
    running,
    wait_until_up,
    worker_pids,
)

TITLE = re.compile(rb'"title":"bench (\d+)"')


@dataclass
class Figures:
    subscribers: int
    connected: int
    delivered: int
    expected: int
    latencies: list[float]
    slowest_per_change: list[float]
    """For each change, when its last subscriber had it."""
    rss_before_kib: int
    rss_after_kib: int
    cpu_seconds: float

    def _median_last(self) -> float:
        if not self.slowest_per_change:
            return float("nan")
        return statistics.median(self.slowest_per_change) * 1000

    def line(self) -> str:
        per_subscriber = (self.rss_after_kib - self.rss_before_kib) / max(self.connected, 1)
        quantiles = statistics.quantiles(self.latencies, n=100) if len(self.latencies) > 1 else []
        p50 = statistics.median(self.latencies) * 1000 if self.latencies else float("nan")
        p99 = quantiles[98] * 1000 if quantiles else float("nan")
        worst = max(self.latencies, default=float("nan")) * 1000
        cpu_us = self.cpu_seconds / max(self.delivered, 1) * 1e6
        return (
            f"N={self.subscribers:<6} connected {self.connected:<6} "
            f"delivered {self.delivered}/{self.expected}  "
            f"p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  max {worst:7.1f} ms  "
            f"(last delivery of a change: median {self._median_last():6.1f} ms)  "
            f"RSS {self.rss_before_kib / 1024:6.1f} → {self.rss_after_kib / 1024:6.1f} MiB "
            f"({per_subscriber:5.1f} KiB/subscriber)  CPU {cpu_us:6.1f} µs/event"
        )


class Subscriber(asyncio.Protocol):
    """One SSE connection, parsed in `data_received`: no reader task, so the client
    spends as little of the shared CPU as it can per event."""

    def __init__(
        self,
        request: bytes,
        sent_at: dict[int, float],
        latencies: list[float],
        by_change: dict[int, list[float]],
    ) -> None:
        self.request = request
        self.by_change = by_change
        self.sent_at = sent_at
        self.latencies = latencies
        self.received = 0
        self.tail = b""
        self.subscribed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, chunk: bytes) -> None:
        now = time.perf_counter()
        data = self.tail + chunk
        cut = data.rfind(b"\n\n") + 2
        self.tail = data[cut:]
        if not self.subscribed.done():
            if b": connected" in data[:cut]:
                self.subscribed.set_result(None)
            return
        for match in TITLE.finditer(data, 0, cut):
            sent = self.sent_at.get(int(match.group(1)))
            if sent is not None:
                self.latencies.append(now - sent)
                self.by_change.setdefault(int(match.group(1)), []).append(now - sent)
                self.received += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(exc or ConnectionError("closed"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def subscribe(
    host: str,
    port: int,
    token: str,
    sent_at: dict[int, float],
    latencies: list[float],
    by_change: dict[int, list[float]],
) -> Subscriber:
    request = f"GET /api/tasks/events?access_token={token} HTTP/1.1\r\nHost: {host}\r\n\r\n"
    loop = asyncio.get_running_loop()
    _, subscriber = await loop.create_connection(
        lambda: Subscriber(request.encode(), sent_at, latencies, by_change), host, port
    )
    await asyncio.wait_for(subscriber.subscribed, 30)
    return subscriber


async def measure(
    base_url: str, token: str, supervisor_pid: int, subscribers: int, changes: int, rate: float
) -> Figures:
    host, port = base_url.removeprefix("http://").split(":")
    (worker,) = worker_pids(supervisor_pid)
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    by_change: dict[int, list[float]] = {}
    rss_before = rss_kib(worker)
    clients: list[Subscriber] = []
    for start in range(0, subscribers, 200):  # in batches: the listen backlog is finite
        batch = await asyncio.gather(
            *(
                subscribe(host, int(port), token, sent_at, latencies, by_change)
                for _ in range(min(200, subscribers - start))
            ),
            return_exceptions=True,
        )
        clients += [client for client in batch if isinstance(client, Subscriber)]
    connected = len(clients)
    await asyncio.sleep(2)  # let the server settle before reading its memory
    rss_after = rss_kib(worker)
    task = post_json(f"{base_url}/api/tasks", {"title": "bench -1"}, token)
    # The create is itself broadcast to every subscriber; measuring before that
    # fan-out ends would charge it to the first change.
    await asyncio.sleep(max(1.0, subscribers * 100e-6))
    cpu_before = cpu_seconds([worker])
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    for sequence in range(changes):
        await asyncio.sleep(max(0.0, started + sequence / rate - time.perf_counter()))
        sent_at[sequence] = time.perf_counter()
        await loop.run_in_executor(None, _patch, base_url, token, int(task["id"]), sequence)
    deadline = time.perf_counter() + 10
    expected = changes * connected
    while sum(client.received for client in clients) < expected:
        if time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.05)
    cpu = cpu_seconds([worker]) - cpu_before
    for client in clients:
        client.close()
    await asyncio.sleep(1)
    return Figures(
        subscribers=subscribers,
        connected=connected,
        delivered=sum(client.received for client in clients),
        expected=expected,
        latencies=latencies,
        slowest_per_change=sorted(max(values) for values in by_change.values()),
        rss_before_kib=rss_before,
        rss_after_kib=rss_after,
        cpu_seconds=cpu,
    )


def _patch(base_url: str, token: str, task_id: int, sequence: int) -> None:
    import urllib.request

    request = urllib.request.Request(
        f"{base_url}/api/tasks/{task_id}",
        data=f'{{"title": "bench {sequence}"}}'.encode(),
        method="PATCH",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument(
        "--subscribers", type=lambda text: [int(n) for n in text.split(",")], default=[1000, 5000]
    )
    parser.add_argument("--changes", type=int, default=100, help="changes per run")
    parser.add_argument("--rate", type=float, default=10.0, help="changes per second")
    parser.add_argument(
        "--hypercorn-config", type=Path, help="a Hypercorn TOML file for quart-tasks serve"
    )
    parser.add_argument("--smoke", action="store_true", help="50 subscribers, 10 changes")
    args = parser.parse_args()
    if args.smoke:
        args.subscribers, args.changes, args.rate = [50], 10, 20.0
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        with database(args.database, workdir, "live") as url:
            password = secrets.token_urlsafe(16)
            env = migrated(url, password, LOG_LEVEL="WARNING")
            port = free_port()
            command = [sys.executable, "-m", "quart_tasks", "serve", "--bind", f"127.0.0.1:{port}"]
            if args.hypercorn_config:
                command += ["--config", str(args.hypercorn_config.resolve())]
            with running(command, env, CHECKOUT, workdir / "server.log") as process:
                base_url = f"http://127.0.0.1:{port}"
                wait_until_up(base_url, process)
                login = {"username": "admin", "password": password}
                token = str(post_json(f"{base_url}/api/login", login)["access_token"])
                print(
                    f"# one worker, {args.database}, {args.changes} changes at {args.rate:g}/s, "
                    f"latency from send to receipt"
                )
                for subscribers in args.subscribers:
                    figures = asyncio.run(
                        measure(base_url, token, process.pid, subscribers, args.changes, args.rate)
                    )
                    print(figures.line(), flush=True)


if __name__ == "__main__":
    main()
