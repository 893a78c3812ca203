"""HTTP/2 from `quart-tasks serve`: over TLS (ALPN) on a certificate made at test time, and
in cleartext to a client that starts with it (prior knowledge)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme

from tests.helpers.apps import ADMIN
from tests.helpers.servers import fresh_database_url, quart_tasks_serve, served_over_tls

pytestmark = pytest.mark.slow

STREAMS = 100
"""Concurrent requests on one connection: Hypercorn's default `h2_max_concurrent_streams`."""


@dataclass(frozen=True)
class TlsServer:
    base_url: str
    trust: ssl.SSLContext
    process: subprocess.Popen[bytes]
    output: Callable[[], str]

    def http2(self, timeout: float = 30) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, http2=True, verify=self.trust, timeout=timeout
        )


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    workdir = tmp_path_factory.mktemp("http2")
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = workdir / "cert.pem", workdir / "key.pem"
    for pem in certificate.cert_chain_pems:
        pem.write_to_path(str(certfile), append=True)
    certificate.private_key_pem.write_to_path(str(keyfile))
    trust = ssl.create_default_context()
    authority.configure_trust(trust)

    def https(bind: str) -> list[str]:
        return [*quart_tasks_serve(bind), "--certfile", str(certfile), "--keyfile", str(keyfile)]

    with (
        fresh_database_url(workdir) as url,
        served_over_tls(url, workdir, https, trust) as server,
    ):
        yield TlsServer(server.base_url, trust, server.process, server.output)


async def logged_in(http: httpx.AsyncClient) -> dict[str, str]:
    answer = await http.post("/api/login", json=ADMIN)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def test_the_api_over_http2_and_tls(tls_server: TlsServer) -> None:
    async with tls_server.http2() as http:
        auth = await logged_in(http)
        made = await http.post("/api/tasks", json={"title": "over h2"}, headers=auth)
        path = made.headers["Location"]
        unchanged = await http.get(path, headers={**auth, "If-None-Match": made.headers["ETag"]})
        listing = await http.get("/api/tasks", headers=auth)
        missing = await http.get("/api/tasks/999999", headers=auth)

    assert made.http_version == "HTTP/2"
    assert made.status_code == 201
    assert unchanged.status_code == 304
    assert listing.status_code == 200
    assert "Link" in listing.headers
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


async def test_http1_over_tls_still_works(tls_server: TlsServer) -> None:
    async with httpx.AsyncClient(base_url=tls_server.base_url, verify=tls_server.trust) as http:
        answer = await http.get("/healthz")

    assert answer.http_version == "HTTP/1.1"
    assert answer.status_code == 200


async def test_100_requests_at_once_share_one_connection(tls_server: TlsServer) -> None:
    async with tls_server.http2() as http:
        auth = await logged_in(http)
        made = await http.post("/api/tasks", json={"title": "read at once"}, headers=auth)
        answers = await asyncio.gather(
            *(http.get(made.headers["Location"], headers=auth) for _ in range(STREAMS))
        )

    assert [answer.status_code for answer in answers] == [200] * STREAMS
    connections = {id(answer.extensions["network_stream"]) for answer in answers}
    streams = {answer.extensions["stream_id"] for answer in answers}
    assert len(connections) == 1, "every request on one connection"
    assert len(streams) == STREAMS, "each on a stream of its own"


async def test_an_event_stream_over_http2_gets_a_change_made_on_the_same_connection(
    tls_server: TlsServer,
) -> None:
    async with tls_server.http2() as http:
        auth = await logged_in(http)
        async with http.stream("GET", "/api/tasks/events", headers=auth) as events:
            assert events.http_version == "HTTP/2"
            assert events.headers["content-type"].startswith("text/event-stream")
            made = await http.post("/api/tasks", json={"title": "streamed on h2"}, headers=auth)
            assert made.status_code == 201
            assert made.extensions["network_stream"] is events.extensions["network_stream"]

            async def created() -> dict[str, object]:
                async for line in events.aiter_lines():
                    if line.startswith("data: {"):
                        data: dict[str, object] = json.loads(line.removeprefix("data: "))
                        if data.get("title") == "streamed on h2":
                            return data
                raise AssertionError("the stream ended")

            data = await asyncio.wait_for(created(), timeout=15)

    assert data["id"] == made.json()["id"]


async def test_a_reload_sends_http2_clients_to_the_new_worker(tls_server: TlsServer) -> None:
    """The stopping worker says GOAWAY (at once to an idle connection, else once its
    streams have ended) and refuses new streams as not processed. httpx then opens a new
    connection. It reports a request it had already sent when the GOAWAY came, and
    nothing else."""
    answers: Counter[str] = Counter()
    reloaded = asyncio.Event()

    async def client(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
        while not reloaded.is_set():
            try:
                answers[str((await http.get("/api/users/me", headers=auth)).status_code)] += 1
            except httpx.RemoteProtocolError as error:
                terminated = "ConnectionTerminated" in str(error)
                # h2 names the code, or gives its number (7) when the reset came by itself.
                refused = re.search(r"error_code:(ErrorCodes\.REFUSED_STREAM|7)\b", str(error))
                answers["retry" if terminated or refused else repr(error)] += 1

    async with tls_server.http2() as http:
        auth = await logged_in(http)
        stopped = tls_server.output().count("stopped (exit code 0)")
        clients = [asyncio.ensure_future(client(http, auth)) for _ in range(4)]
        await asyncio.sleep(0.5)
        tls_server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while tls_server.output().count("stopped (exit code 0)") == stopped:
            assert time.monotonic() < deadline, "the old worker did not stop"
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # on the new worker for a while
        reloaded.set()
        await asyncio.gather(*clients)

    assert set(answers) <= {"200", "retry"}, answers
    assert answers["retry"] <= 8, answers
    assert "Traceback" not in tls_server.output()


async def test_http2_in_cleartext_with_prior_knowledge(live_server: str) -> None:
    async with httpx.AsyncClient(base_url=live_server, http1=False, http2=True) as http:
        answer = await http.post("/api/login", json=ADMIN)

    assert answer.http_version == "HTTP/2"
    assert answer.status_code == 200


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not used")
    refused = subprocess.run(
        [sys.executable, "-m", "quart_tasks", "serve", "--certfile", str(tmp_path / "cert.pem")],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert refused.returncode == 2
    assert "--certfile and --keyfile go together" in refused.stderr
