"""S1 over HTTP/2 beside HTTP/1.1, both over TLS, measured with one tool: nghttp2's h2load.

    .venv/bin/python bench/http2.py                  # 3 alternating runs of 8 s each
    .venv/bin/python bench/http2.py --smoke          # what CI runs: the script works

Serves `quart-tasks serve --certfile --keyfile` (2 workers, a fresh PostgreSQL database
of 10,000 tasks, a certificate made for the run) and runs h2load against it: S1's reads
of random tasks by id from 64 connections, as HTTP/1.1 (`--h1`, one request at a time
per connection, as wrk does), as HTTP/2 with one stream per connection, and as HTTP/2
with 10 streams per connection. Prints each one's median requests/s and latency.
"""

from __future__ import annotations

import argparse
import random
import re
import secrets
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import trustme

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # bench/load.py: the database, its seed and the server's process
from load import CHECKOUT

CONNECTIONS = 64
MODES = {  # name: h2load's options besides the connections
    "HTTP/1.1": ["--h1"],
    "HTTP/2, 1 stream": ["-m", "1"],
    "HTTP/2, 10 streams": ["-m", "10"],
}
FINISHED = re.compile(r"finished in [\d.]+m?s, ([\d.]+) req/s")
REQUESTS = re.compile(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded")
LATENCY = re.compile(r"time for request:\s+\S+\s+\S+\s+(\S+)")


def token_and_ids(
    base_url: str, password: str, trust: ssl.SSLContext, process: subprocess.Popen[bytes]
) -> tuple[str, tuple[int, int]]:
    """Once the server answers: the admin's access token, and the seeded tasks' ids."""
    with httpx.Client(base_url=base_url, verify=trust, timeout=30) as http:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            try:
                if http.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)
        login = {"username": "admin", "password": password}
        token = str(http.post("/api/login", json=login).json()["access_token"])
        auth = {"Authorization": f"Bearer {token}"}

        def first(sort: str) -> int:
            page = http.get("/api/tasks", params={"sort": sort, "page_size": 1}, headers=auth)
            return int(page.json()["items"][0]["id"])

        return token, (first("id_asc"), first("id_desc"))


def h2load(
    base_url: str, token: str, uris: Path, mode: list[str], seconds: int
) -> dict[str, float]:
    output = subprocess.run(
        [
            "h2load",
            *mode,
            "-c",
            str(CONNECTIONS),
            "-D",
            str(seconds),
            "--warm-up-time",
            "1",
            "-H",
            f"Authorization: Bearer {token}",
            "-i",
            str(uris),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    finished, requests, latency = (
        pattern.search(output) for pattern in (FINISHED, REQUESTS, LATENCY)
    )
    if not (finished and requests and latency):
        raise RuntimeError(f"h2load's output was not understood:\n{output}")
    done, succeeded = int(requests.group(2)), int(requests.group(3))
    mean = latency.group(1)
    mean_ms = float(mean.removesuffix("ms")) if mean.endswith("ms") else float(mean[:-2]) / 1000
    return {
        "rps": float(finished.group(1)),
        "failed": done - succeeded,
        "mean_ms": mean_ms,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds a measurement")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="a short run: the script works")
    options = parser.parse_args(argv)
    tasks = 10_000
    if options.smoke:
        options.runs, options.duration, tasks = 1, 2, 100

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        authority = trustme.CA()
        certificate = authority.issue_cert("127.0.0.1")
        certfile, keyfile = workdir / "cert.pem", workdir / "key.pem"
        for pem in certificate.cert_chain_pems:
            pem.write_to_path(str(certfile), append=True)
        certificate.private_key_pem.write_to_path(str(keyfile))

        url = stack.enter_context(load.database("postgres", workdir, "http2"))
        password = secrets.token_urlsafe(16)
        env = load.migrated(url, password, LOGIN_FAILURES_PER_ADDRESS="1000/minute")
        load.seed(url, tasks, owner_id=1)
        port = load.free_port()
        command = [sys.executable, "-m", "quart_tasks", "serve", "--bind", f"127.0.0.1:{port}"]
        command += ["--workers", str(options.workers)]
        command += ["--certfile", str(certfile), "--keyfile", str(keyfile)]
        process = stack.enter_context(load.running(command, env, CHECKOUT, workdir / "server.log"))
        trust = ssl.create_default_context()
        authority.configure_trust(trust)
        base_url = f"https://127.0.0.1:{port}"
        token, (lo, hi) = token_and_ids(base_url, password, trust, process)
        uris = workdir / "uris.txt"
        rng = random.Random(1)
        uris.write_text(
            "".join(f"{base_url}/api/tasks/{rng.randint(lo, hi)}\n" for _ in range(1000))
        )

        results: dict[str, list[dict[str, float]]] = {name: [] for name in MODES}
        for _ in range(options.runs):
            for name, mode in MODES.items():
                results[name].append(h2load(base_url, token, uris, mode, options.duration))

    print(
        f"# S1 over TLS from {CONNECTIONS} connections, {options.workers} workers; "
        f"medians of {options.runs} alternating runs of {options.duration} s"
    )
    print(f"{'mode':20s} {'rps':>8s} {'ratio':>6s} {'mean ms':>8s}  failed  rps of each run")
    first = statistics.median(run["rps"] for run in results["HTTP/1.1"])
    failed = 0
    for name, runs in results.items():
        rps = statistics.median(run["rps"] for run in runs)
        mean = statistics.median(run["mean_ms"] for run in runs)
        failed += int(sum(run["failed"] for run in runs))
        each = "/".join(f"{run['rps']:.0f}" for run in runs)
        print(
            f"{name:20s} {rps:8.0f} {rps / first:6.2f} {mean:8.1f}  "
            f"{int(sum(run['failed'] for run in runs)):6d}  {each}"
        )
    if failed:
        sys.exit(f"{failed} requests failed")


if __name__ == "__main__":
    main()
