"""Live-change fan-out: N subscribers on one Hypercorn worker, changes at a steady rate.

For each N it prints delivery latency (p50/p99/max, from just before the change
was sent to receipt by a subscriber, so an upper bound on commit-to-receipt),
the worker's RSS per subscriber, and the worker's CPU per delivered event.

    .venv/bin/python bench/live.py                      # N = 1,000 and 5,000, PostgreSQL
    .venv/bin/python bench/live.py --subscribers 200 --database sqlite
    .venv/bin/python bench/live.py --transport websocket
    .venv/bin/python bench/live.py --idle --subscribers 10000   # memory only
    .venv/bin/python bench/live.py --s1 10 --subscribers 5000   # S1's p99 beside them
    .venv/bin/python bench/live.py --server-env EVENTS_DIRECT_WRITES=false
    .venv/bin/python bench/live.py --smoke              # seconds: proves the script works

The subscribers are asyncio sockets in this process, on the same cores as the
server, as the figures in docs/performance/15-live-fan-out-and-the-collector.md were measured.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import resource
import secrets
import statistics
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from load import (
    CHECKOUT,
    Result,
    cpu_seconds,
    database,
    free_port,
    id_range,
    migrated,
    post_json,
    rss_kib,
    running,
    seed,
    wait_until_up,
    worker_pids,
    wrk,
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
    rss_end_kib: int
    """After the changes: what delivering them left behind (a compressor per WebSocket)."""
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
        memory = (
            f"RSS {self.rss_before_kib / 1024:6.1f} → {self.rss_after_kib / 1024:6.1f} MiB "
            f"({per_subscriber:5.1f} KiB/subscriber)"
        )
        if not self.expected:  # --idle
            return f"N={self.subscribers:<6} connected {self.connected:<6} idle  {memory}"
        end = (self.rss_end_kib - self.rss_before_kib) / max(self.connected, 1)
        memory += f" ({end:5.1f} after the changes)"
        return (
            f"N={self.subscribers:<6} connected {self.connected:<6} "
            f"delivered {self.delivered}/{self.expected}  "
            f"p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  max {worst:7.1f} ms  "
            f"(last delivery of a change: median {self._median_last():6.1f} ms)  "
            f"{memory}  CPU {cpu_us:6.1f} µs/event"
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
        self.count(data, cut, now)

    def count(self, data: bytes, end: int, now: float) -> None:
        for match in TITLE.finditer(data, 0, end):
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


class WebSocketSubscriber(Subscriber):
    """One WebSocket, its server's frames (unmasked) split by hand, decompressed where
    per-message deflate was agreed (`--transport websocket-deflate`)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.inflate: zlib._Decompress | None = None

    def data_received(self, chunk: bytes) -> None:
        now = time.perf_counter()
        data = self.tail + chunk
        if not self.subscribed.done():
            head_end = data.find(b"\r\n\r\n")
            if head_end < 0:
                self.tail = data
                return
            if b"permessage-deflate" in data[:head_end].lower():
                self.inflate = zlib.decompressobj(-zlib.MAX_WBITS)
            self.subscribed.set_result(None)
            data = data[head_end + 4 :]
        start = 0
        while len(data) - start >= 2:
            flags, length = data[start], data[start + 1] & 0x7F
            at = start + 2
            if length == 126:
                length, at = int.from_bytes(data[at : at + 2]), at + 2
            elif length == 127:
                length, at = int.from_bytes(data[at : at + 8]), at + 8
            if len(data) < at + length:
                break
            payload = data[at : at + length]
            if flags & 0x40 and self.inflate is not None:
                payload = self.inflate.decompress(payload + b"\x00\x00\xff\xff")
            self.count(payload, len(payload), now)
            start = at + length
        self.tail = data[start:]


async def subscribe(
    host: str,
    port: int,
    token: str,
    transport: str,
    sent_at: dict[int, float],
    latencies: list[float],
    by_change: dict[int, list[float]],
) -> Subscriber:
    loop = asyncio.get_running_loop()
    kind: type[Subscriber] = Subscriber
    if transport == "sse":
        request = f"GET /api/tasks/events?access_token={token} HTTP/1.1\r\nHost: {host}\r\n\r\n"
    else:
        kind = WebSocketSubscriber
        key = base64.b64encode(os.urandom(16)).decode()
        deflate = "Sec-WebSocket-Extensions: permessage-deflate\r\n"
        request = (
            f"GET /api/tasks/ws?access_token={token} HTTP/1.1\r\nHost: {host}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{deflate if transport.endswith('deflate') else ''}\r\n"
        )
    _, subscriber = await loop.create_connection(
        lambda: kind(request.encode(), sent_at, latencies, by_change), host, port
    )
    await asyncio.wait_for(subscriber.subscribed, 30)
    return subscriber


@dataclass
class Subscribers:
    """N subscribers connected, and what they received."""

    clients: list[Subscriber] = field(default_factory=list)
    sent_at: dict[int, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    by_change: dict[int, list[float]] = field(default_factory=dict)

    async def connect(self, base_url: str, token: str, transport: str, count: int) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        for start in range(0, count, 200):  # in batches: the listen backlog is finite
            batch = await asyncio.gather(
                *(
                    subscribe(
                        host,
                        int(port),
                        token,
                        transport,
                        self.sent_at,
                        self.latencies,
                        self.by_change,
                    )
                    for _ in range(min(200, count - start))
                ),
                return_exceptions=True,
            )
            self.clients += [client for client in batch if isinstance(client, Subscriber)]

    @property
    def received(self) -> int:
        return sum(client.received for client in self.clients)

    async def close(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()
        await asyncio.sleep(1)


async def send_changes(
    base_url: str, token: str, task_id: int, sent_at: dict[int, float], changes: int, rate: float
) -> None:
    """`changes` PATCHes of one task at `rate` a second, each time noted in `sent_at`."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    first = len(sent_at)
    for sequence in range(first, first + changes):
        await asyncio.sleep(max(0.0, started + (sequence - first) / rate - time.perf_counter()))
        sent_at[sequence] = time.perf_counter()
        await loop.run_in_executor(None, _patch, base_url, token, task_id, sequence)


async def measure(
    base_url: str,
    token: str,
    supervisor_pid: int,
    subscribers: int,
    args: argparse.Namespace,
) -> Figures:
    (worker,) = worker_pids(supervisor_pid)
    rss_before = rss_kib(worker)
    group = Subscribers()
    await group.connect(base_url, token, args.transport, subscribers)
    connected = len(group.clients)
    await asyncio.sleep(2)  # let the server settle before reading its memory
    rss_after = rss_kib(worker)
    changes = 0 if args.idle else args.changes
    cpu = 0.0
    rss_end = rss_after
    if changes:
        task = post_json(f"{base_url}/api/tasks", {"title": "bench -1"}, token)
        # The create is itself broadcast to every subscriber; measuring before that
        # fan-out ends would charge it to the first change.
        await asyncio.sleep(max(1.0, subscribers * 100e-6))
        cpu_before = cpu_seconds([worker])
        await send_changes(base_url, token, int(task["id"]), group.sent_at, changes, args.rate)
        deadline = time.perf_counter() + 10
        while group.received < changes * connected and time.perf_counter() < deadline:  # noqa: ASYNC110 (a count over thousands of protocols)
            await asyncio.sleep(0.05)
        cpu = cpu_seconds([worker]) - cpu_before
    rss_end = rss_kib(worker)
    delivered = group.received
    await group.close()
    return Figures(
        subscribers=subscribers,
        connected=connected,
        delivered=delivered,
        expected=changes * connected,
        latencies=group.latencies,
        slowest_per_change=sorted(max(values) for values in group.by_change.values()),
        rss_before_kib=rss_before,
        rss_after_kib=rss_after,
        rss_end_kib=rss_end if changes else rss_after,
        cpu_seconds=cpu,
    )


async def s1_beside_subscribers(
    base_url: str, token: str, wrk_env: dict[str, str], args: argparse.Namespace
) -> None:
    """S1 (GET one task, 64 connections) alone, then while N subscribers receive changes
    at `--rate`; alternated `--runs` times, medians printed."""
    loop = asyncio.get_running_loop()
    task = post_json(f"{base_url}/api/tasks", {"title": "bench -1"}, token)
    alone: list[Result] = []
    beside: list[Result] = []
    for _ in range(args.runs):
        alone.append(
            await loop.run_in_executor(None, wrk, base_url, "get.lua", 64, args.s1, wrk_env)
        )
        group = Subscribers()
        await group.connect(base_url, token, args.transport, args.subscribers[0])
        await asyncio.sleep(2)
        changing = asyncio.create_task(
            send_changes(
                base_url,
                token,
                int(task["id"]),
                group.sent_at,
                int(args.rate * (args.s1 + 2)),
                args.rate,
            )
        )
        await asyncio.sleep(1)
        beside.append(
            await loop.run_in_executor(None, wrk, base_url, "get.lua", 64, args.s1, wrk_env)
        )
        await changing
        print(
            f"  run: S1 alone p99 {alone[-1].p99_ms:6.2f} ms {alone[-1].rps:7.0f}/s; beside "
            f"{len(group.clients)} subscribers p99 {beside[-1].p99_ms:6.2f} ms "
            f"{beside[-1].rps:7.0f}/s ({group.received} deliveries)",
            flush=True,
        )
        await group.close()

    def median(results: list[Result], value: str) -> float:
        return float(statistics.median(getattr(result, value) for result in results))

    p99_alone, p99_beside = median(alone, "p99_ms"), median(beside, "p99_ms")
    print(
        f"S1 p99 median: alone {p99_alone:.2f} ms, beside {args.subscribers[0]} subscribers "
        f"at {args.rate:g} changes/s {p99_beside:.2f} ms: {p99_beside / p99_alone:.2f}x; "
        f"requests/s {median(alone, 'rps'):.0f} -> {median(beside, 'rps'):.0f}"
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
        "--transport", choices=["sse", "websocket", "websocket-deflate"], default="sse"
    )
    parser.add_argument("--idle", action="store_true", help="connect, measure memory, no changes")
    parser.add_argument(
        "--s1", type=int, metavar="SECONDS", help="S1's p99 alone and beside the subscribers"
    )
    parser.add_argument("--runs", type=int, default=3, help="alternations for --s1")
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="NAME=VALUE", help="a setting"
    )
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
            settings = dict(setting.split("=", 1) for setting in args.server_env)
            env = migrated(url, password, LOG_LEVEL="WARNING", **settings)
            if args.s1:
                seed(url, 1000, owner_id=1)
            port = free_port()
            command = [sys.executable, "-m", "quart_tasks", "serve", "--bind", f"127.0.0.1:{port}"]
            if args.hypercorn_config:
                command += ["--config", str(args.hypercorn_config.resolve())]
            with running(command, env, CHECKOUT, workdir / "server.log") as process:
                base_url = f"http://127.0.0.1:{port}"
                wait_until_up(base_url, process)
                login = {"username": "admin", "password": password}
                token = str(post_json(f"{base_url}/api/login", login)["access_token"])
                shown = " ".join(args.server_env)
                if args.s1:
                    low, high = id_range(base_url, token)
                    wrk_env = {"BENCH_TOKEN": token, "BENCH_LO": str(low), "BENCH_HI": str(high)}
                    print(f"# one worker, {args.database}, {args.transport} {shown}")
                    asyncio.run(s1_beside_subscribers(base_url, token, wrk_env, args))
                    return
                what = "idle" if args.idle else f"{args.changes} changes at {args.rate:g}/s"
                print(
                    f"# one worker, {args.database}, {args.transport}, {what} {shown}; "
                    f"latency from send to receipt"
                )
                for subscribers in args.subscribers:
                    figures = asyncio.run(measure(base_url, token, process.pid, subscribers, args))
                    print(figures.line(), flush=True)


if __name__ == "__main__":
    main()
