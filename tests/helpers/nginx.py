"""Debian's nginx with deploy/nginx.conf as written, in front of the given instances."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.servers import CHECKOUT

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_config(workdir: Path, upstreams: list[str], port: int) -> Path:
    """deploy/nginx.conf as written, but for these instances and this port, in a main
    configuration of its own (files under `workdir`)."""
    site = (CHECKOUT / "deploy" / "nginx.conf").read_text()
    written = re.search(r"(    server 10\.0\.0\.\d+:8000( [^\n]*)?;\n)+", site)
    assert written, "deploy/nginx.conf's upstream servers were not found"
    options = written.group(2) or ""  # as written for each server: max_fails, fail_timeout
    servers = "".join(f"    server {address}{options};\n" for address in upstreams)
    site = site.replace(written.group(0), servers)
    assert "listen 80;" in site
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    temp = "\n".join(
        f"    {kind}_temp_path {workdir / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = f"""
{"user root;" if os.geteuid() == 0 else ""}
daemon off;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
{temp}
{site}
}}
"""
    path = workdir / "nginx.conf"
    path.write_text(main)
    return path


@contextlib.contextmanager
def nginx(config: Path, port: int) -> Iterator[None]:
    process = subprocess.Popen(
        [NGINX, "-p", str(config.parent), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                errors = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"nginx did not start: {errors}")
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(10)
