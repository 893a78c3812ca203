"""Compressed answers on request (zstd, brotli, gzip), with Vary and an ETag per encoding."""

from __future__ import annotations

import gzip
import json
from typing import Any

import brotli  # type: ignore[import-untyped]
import pytest
import zstandard
from quart import Quart, Response

from quart_tasks.web.compression import (
    IN_A_THREAD_ABOVE,
    _vary_on_accept_encoding,
    init_compression,
)
from tests.helpers.apps import settings_for_test
from tests.helpers.support import Client

DECOMPRESS = {
    "gzip": gzip.decompress,
    "br": brotli.decompress,
    "zstd": lambda data: zstandard.ZstdDecompressor().decompress(data),
}


@pytest.fixture
async def page(client: Client, auth: dict[str, str]) -> bytes:
    """A page of 20 tasks, about 3 KiB of JSON, as sent uncompressed."""
    for n in range(20):
        made = await client.post("/api/tasks", json={"title": f"task number {n:03}"}, headers=auth)
        assert made.status_code == 201
    plain = await client.get("/api/tasks?page_size=20", headers=auth)
    assert "Content-Encoding" not in plain.headers
    body = await plain.get_data(as_text=False)
    assert len(body) > 2048
    return body


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
async def test_a_page_is_compressed_as_the_client_asks(
    client: Client, auth: dict[str, str], page: bytes, encoding: str
) -> None:
    answer = await client.get(
        "/api/tasks?page_size=20", headers={**auth, "Accept-Encoding": encoding}
    )
    data = await answer.get_data(as_text=False)

    assert answer.headers["Content-Encoding"] == encoding
    assert "Accept-Encoding" in answer.headers["Vary"]
    assert int(answer.headers["Content-Length"]) == len(data) < len(page) / 3
    assert DECOMPRESS[encoding](data) == page


@pytest.mark.parametrize(
    ("accepted", "chosen"),
    [
        ("gzip, deflate, br, zstd", "zstd"),  # all alike: the server's preference
        ("gzip;q=1.0, br;q=0.5", "gzip"),
        ("br;q=0.9, gzip;q=0.1, zstd;q=0", "br"),
        ("*", "zstd"),
        ("identity", None),
        ("deflate", None),
        ("", None),
    ],
)
async def test_the_encoding_follows_the_clients_preferences(
    client: Client, auth: dict[str, str], page: bytes, accepted: str, chosen: str | None
) -> None:
    answer = await client.get(
        "/api/tasks?page_size=20", headers={**auth, "Accept-Encoding": accepted}
    )

    assert answer.headers.get("Content-Encoding") == chosen
    assert "Accept-Encoding" in answer.headers["Vary"]


async def test_a_small_answer_goes_out_as_it_is(client: Client, auth: dict[str, str]) -> None:
    made = await client.post("/api/tasks", json={"title": "short"}, headers=auth)
    answer = await client.get(made.headers["Location"], headers={**auth, "Accept-Encoding": "gzip"})

    assert answer.status_code == 200
    assert "Content-Encoding" not in answer.headers
    assert "Accept-Encoding" not in answer.headers.get("Vary", "")


async def test_each_encoding_has_its_own_etag_and_any_of_them_works_as_a_precondition(
    app: Quart, client: Client, auth: dict[str, str]
) -> None:
    app.config["COMPRESS_MIN_BYTES"] = 0  # a single task is compressed too
    made = await client.post("/api/tasks", json={"title": "versioned"}, headers=auth)
    path = made.headers["Location"]

    gzipped = await client.get(path, headers={**auth, "Accept-Encoding": "gzip"})
    plain = await client.get(path, headers=auth)
    unchanged = await client.get(
        path, headers={**auth, "If-None-Match": gzipped.headers["ETag"], "Accept-Encoding": "gzip"}
    )
    plain_unchanged = await client.get(path, headers={**auth, "If-None-Match": '"1"'})
    patched = await client.patch(
        path, json={"done": True}, headers={**auth, "If-Match": gzipped.headers["ETag"]}
    )
    stale = await client.patch(
        path, json={"done": False}, headers={**auth, "If-Match": gzipped.headers["ETag"]}
    )

    assert gzipped.headers["ETag"] == '"1-gzip"'
    assert plain.headers["ETag"] == '"1"'
    assert unchanged.status_code == 304
    assert unchanged.headers["ETag"] == '"1-gzip"', "a 304 names what the 200 would have"
    assert plain_unchanged.headers["ETag"] == '"1"'
    assert patched.status_code == 200
    assert stale.status_code == 412


async def test_errors_are_compressed_like_any_answer(app: Quart, client: Client) -> None:
    app.config["COMPRESS_MIN_BYTES"] = 0
    answer = await client.get("/api/tasks", headers={"Accept-Encoding": "gzip"})

    assert answer.status_code == 401
    assert answer.headers["Content-Encoding"] == "gzip"
    body: dict[str, Any] = json.loads(gzip.decompress(await answer.get_data(as_text=False)))
    assert body["error"]["code"] == "unauthorized"


async def test_a_streamed_answer_is_never_compressed(tmp_path: Any) -> None:
    app = Quart(__name__)
    app.config["COMPRESS_MIN_BYTES"] = 0
    init_compression(app, {"COMPRESS_ENCODINGS": "gzip"})

    @app.get("/stream")
    async def stream() -> Response:
        async def events() -> Any:
            yield b"data: 1\n\n"

        return Response(events(), content_type="text/event-stream")

    answer = await app.test_client().get("/stream", headers={"Accept-Encoding": "gzip"})

    assert "Content-Encoding" not in answer.headers
    assert await answer.get_data() == b"data: 1\n\n"


async def test_no_encodings_turns_compression_off(tmp_path: Any) -> None:
    config = settings_for_test(tmp_path, COMPRESS_ENCODINGS="")
    app = Quart(__name__)
    init_compression(app, config.as_mapping())

    assert not app.after_request_funcs


def test_an_unknown_encoding_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="no compressor for deflate"):
        init_compression(Quart(__name__), {"COMPRESS_ENCODINGS": "gzip,deflate"})


def test_vary_keeps_what_it_already_named() -> None:
    fresh, crossed = Response(b"{}"), Response(b"{}", headers={"Vary": "Origin"})

    _vary_on_accept_encoding(fresh)
    _vary_on_accept_encoding(crossed)

    assert fresh.headers["Vary"] == "Accept-Encoding"
    assert set(crossed.vary) == {"Origin", "Accept-Encoding"}


async def test_a_large_body_is_compressed_off_the_event_loop_all_the_same() -> None:
    body = json.dumps({"items": [f"item {n}" for n in range(40_000)]}).encode()
    assert len(body) > IN_A_THREAD_ABOVE
    app = Quart(__name__)
    app.config["COMPRESS_MIN_BYTES"] = 0
    init_compression(app, {"COMPRESS_ENCODINGS": "gzip"})

    @app.get("/big")
    async def big() -> Response:
        return Response(body, content_type="application/json")

    answer = await app.test_client().get("/big", headers={"Accept-Encoding": "gzip"})

    assert answer.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await answer.get_data(as_text=False)) == body
