"""A rollout under load behind nginx: each instance reloaded in turn, as docs/deployment.md does it.

    .venv/bin/python bench/rollout.py                # 20 s of S5, reloads at 5 and 10 s
    .venv/bin/python bench/rollout.py --smoke        # what CI runs: the script works

Serves two `quart-tasks serve` instances (2 workers each, on one fresh PostgreSQL
database of 10,000 tasks) behind Debian's nginx configured by deploy/nginx.conf
(`tests/helpers/nginx.py`), drives S5's mix with wrk (80% reads by id, 15% PATCH, 5%
creates) from 64 connections through the proxy, and sends SIGHUP to one instance, then
to the other (`systemctl reload`). Prints what wrk got that was not a 2xx (answers and
socket errors) and nginx's errors by kind: a request nginx lost on its connection to
an instance is logged there, and retried elsewhere only if it was idempotent.
"""

from __future__ import annotations

import argparse
import re
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # bench/load.py: the database, its seed and the server's process
from load import CHECKOUT

sys.path.insert(0, str(CHECKOUT))
from tests.helpers.nginx import nginx, nginx_config  # the tested proxy

CONNECTIONS = 64
NGINX_ERROR = re.compile(r"\[error\] \d+#\d+: \*\d+ (?P<what>[^,]+),")


def nginx_errors(log: Path) -> Counter[str]:
    return Counter(
        found.group("what")
        for found in map(NGINX_ERROR.search, log.read_text(errors="replace").splitlines())
        if found
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--reload-at", type=float, default=5, help="the first instance's reload")
    parser.add_argument("--reload-every", type=float, default=5, help="then the next one's")
    parser.add_argument("--workers", type=int, default=2, help="per instance")
    parser.add_argument("--seed", type=int, default=10_000, help="tasks in the database")
    parser.add_argument("--smoke", action="store_true", help="a short run: the script works")
    options = parser.parse_args(argv)
    if options.smoke:
        options.duration, options.reload_at, options.reload_every = 6, 1.5, 2.0
        options.seed, options.workers = 100, 1

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        url = stack.enter_context(load.database("postgres", workdir, "rollout"))
        password = secrets.token_urlsafe(16)
        env = load.migrated(
            url,
            password,
            TRUSTED_PROXIES="127.0.0.1",
            LOGIN_FAILURES_PER_ADDRESS="1000/minute",
        )
        load.seed(url, options.seed, owner_id=1)
        instances = []
        for number in (1, 2):
            port = load.free_port()
            command = [sys.executable, "-m", "quart_tasks", "serve"]
            command += ["--bind", f"127.0.0.1:{port}", "--workers", str(options.workers)]
            log = workdir / f"instance-{number}.log"
            process = stack.enter_context(load.running(command, env, CHECKOUT, log))
            load.wait_until_up(f"http://127.0.0.1:{port}", process)
            instances.append((f"127.0.0.1:{port}", process, log))
        proxy_port = load.free_port()
        config = nginx_config(workdir, [address for address, _, _ in instances], proxy_port)
        stack.enter_context(nginx(config, proxy_port))
        proxy = f"http://127.0.0.1:{proxy_port}"
        login = {"username": "admin", "password": password}
        token = str(load.post_json(f"{proxy}/api/login", login)["access_token"])
        id_range = load.id_range(proxy, token)
        reloads: list[float] = []
        started = time.monotonic()

        def reload_in_turn() -> None:
            for turn, (_, process, _) in enumerate(instances):
                at = options.reload_at + turn * options.reload_every
                time.sleep(max(0.0, started + at - time.monotonic()))
                process.send_signal(signal.SIGHUP)
                reloads.append(time.monotonic() - started)

        reloading = threading.Thread(target=reload_in_turn)
        reloading.start()
        env = {"BENCH_TOKEN": token, "BENCH_LO": str(id_range[0]), "BENCH_HI": str(id_range[1])}
        result = load.wrk(proxy, "mixed.lua", CONNECTIONS, options.duration, env)
        reloading.join()
        errors = nginx_errors(workdir / "error.log")
        logs = [log.read_text(errors="replace") for _, _, log in instances]

    print(
        f"# S5 through nginx from {CONNECTIONS} connections (wrk) for {options.duration} s; "
        f"2 instances of {options.workers} workers"
    )
    print("reloads (SIGHUP) at " + ", ".join(f"{moment:.1f} s" for moment in reloads))
    print(
        f"{result.rps:,.0f} requests/s; not 2xx: {result.non2xx}; socket errors: {result.errors}; "
        f"p99 {result.p99_ms:.0f} ms"
    )
    print(
        "nginx errors: "
        + (", ".join(f"{what} x{count}" for what, count in errors.most_common()) or "none")
    )
    replaced = sum(log.count(f"replacing {options.workers} workers") for log in logs)
    print(f"instances that replaced their workers: {replaced} of 2")
    print(f"tracebacks in the instances' logs: {sum(log.count('Traceback') for log in logs)}")
    if replaced != 2:
        sys.exit("the rollout did not happen")


if __name__ == "__main__":
    main()
