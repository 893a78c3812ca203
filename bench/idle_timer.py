"""Hypercorn's CPU per request with its idle task against `IdleTimer`, on a bare ASGI app.

Serves a two-byte answer from one Hypercorn worker (asyncio), once with Hypercorn's
own `TCPServer` and once with `idle_task` replaced by `quart_tasks.keep_alive.IdleTimer`,
in alternating runs, drives each with wrk (64 connections, keep-alive), and prints the
server's CPU time per request and requests/s, then the medians. With no app work to hide
it, the connection handling's own cost shows.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
SERVER = """
import asyncio, sys
sys.path.insert(0, {checkout!r})
from hypercorn.asyncio import serve
from hypercorn.config import Config
if {timer!r}:
    import hypercorn.asyncio.run
    from quart_tasks.keep_alive import IdleTimer

    class TimedTCPServer(hypercorn.asyncio.run.TCPServer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.idle_task = IdleTimer(self)

    hypercorn.asyncio.run.TCPServer = TimedTCPServer

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]}})
    await send({{"type": "http.response.body", "body": b"ok"}})

config = Config()
config.bind = ["127.0.0.1:{port}"]
config.accesslog = config.errorlog = None
asyncio.run(serve(app, config))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(port: int, seconds: int) -> float:
    output = subprocess.run(
        ["wrk", "-t1", "-c64", f"-d{seconds}s", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]


def measure(timer: bool, seconds: int) -> tuple[float, float]:
    """CPU µs per request and requests/s of one run."""
    port = free_port()
    code = SERVER.format(checkout=str(CHECKOUT), timer=timer, port=port)
    server = subprocess.Popen([sys.executable, "-c", code])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        wrk(port, 2)  # warm up
        before = cpu_seconds(server.pid)
        rps = wrk(port, seconds)
        return (cpu_seconds(server.pid) - before) / (rps * seconds) * 1e6, rps
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"idle task": [], "IdleTimer": []}
    for _ in range(args.runs):
        for name in results:
            results[name].append(measure(name == "IdleTimer", args.duration))
            cpu, rps = results[name][-1]
            print(f"{name:<10} cpu_us_per_req={cpu:5.0f} rps={rps:6.0f}", flush=True)
    medians = {
        name: (statistics.median(c for c, _ in runs), statistics.median(r for _, r in runs))
        for name, runs in results.items()
    }
    for name, (cpu, rps) in medians.items():
        print(f"median {name:<10} cpu_us_per_req={cpu:5.0f} rps={rps:6.0f}")
    (task_cpu, task_rps), (timer_cpu, timer_rps) = medians.values()
    print(
        f"IdleTimer / idle task: CPU per request {timer_cpu / task_cpu:.2f}, "
        f"requests/s {timer_rps / task_rps:.2f}"
    )


if __name__ == "__main__":
    main()
