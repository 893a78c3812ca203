"""Compressed answers for clients that ask: zstd, brotli or gzip (`Accept-Encoding`).

Only a body large enough to gain is compressed (`COMPRESS_MIN_BYTES`, 1 KiB by
default): a single task is about 150 bytes, and compressing it would cost more than the
bytes it saves. A page of 20 tasks shrinks 5 to 7 times. Every answer of that size says
`Vary: Accept-Encoding`, compressed or not, so that a cache keeps the variants apart. A
smaller one is the same whatever the client accepts, and says nothing: checking its
length is all it costs (S1 measured 6% more CPU per request while every answer was
looked at; docs/performance/22-compression.md).

A compressed answer is another representation of the resource, and a strong ETag must
tell them apart (RFC 9110, 8.8.3): `"5"` becomes `"5-gzip"`. The preconditions
(`web.conditional`) read the version under any of these suffixes, so a client sends back
whichever ETag it was given.

The event stream is never compressed. Each event would need a flush of its own, which
loses most of the gain on events of a few hundred bytes, and each subscriber would hold
a compressor's state, tens or hundreds of KiB, against the few it holds now.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable, Mapping
from typing import Any

import brotli  # type: ignore[import-untyped]
import zstandard
from quart import Quart, Response, current_app, request
from quart.wrappers.response import DataBody

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "zstd": zstandard.ZstdCompressor(level=3).compress,
    "br": lambda data: brotli.compress(data, quality=4),
    "gzip": lambda data: gzip.compress(data, compresslevel=6, mtime=0),
}
"""By preference where the client likes several equally: each at a level that costs
about what gzip's default does (zstd and brotli then also compress better)."""
ETAG_SUFFIXES = tuple(f"-{name}" for name in COMPRESSORS)
COMPRESSIBLE = ("application/json", "text/", "application/javascript")
IN_A_THREAD_ABOVE = 256 * 1024
"""Bodies this large (the docs page's script) are compressed off the event loop."""


def init_compression(app: Quart, config: Mapping[str, Any]) -> None:
    encodings = [name.strip() for name in config["COMPRESS_ENCODINGS"].split(",") if name.strip()]
    unknown = set(encodings) - set(COMPRESSORS)
    if unknown:
        raise ValueError(f"COMPRESS_ENCODINGS: no compressor for {', '.join(sorted(unknown))}")
    if not encodings:
        return

    async def compress(response: Response) -> Response:
        # First what costs least and turns most answers away: a single task's length.
        length = response.content_length
        if length is None or length < current_app.config["COMPRESS_MIN_BYTES"]:
            return response
        if not _compressible(response):
            return response
        _vary_on_accept_encoding(response)
        if "Accept-Encoding" not in request.headers:
            return response  # most API clients: no parsing, no compressing
        encoding = request.accept_encodings.best_match(encodings)
        if encoding is None:
            return response
        data = await response.get_data(as_text=False)
        if len(data) >= IN_A_THREAD_ABOVE:
            compressed = await asyncio.to_thread(COMPRESSORS[encoding], data)
        else:
            compressed = COMPRESSORS[encoding](data)
        response.set_data(compressed)
        response.headers["Content-Encoding"] = encoding
        tag, weak = response.get_etag()
        if tag is not None:
            response.set_etag(f"{tag}-{encoding}", weak=bool(weak))
        return response

    app.after_request(compress)


def _compressible(response: Response) -> bool:
    return (
        isinstance(response.response, DataBody)
        and response.status_code not in (204, 304)
        and response.status_code >= 200
        and "Content-Encoding" not in response.headers
        and response.headers.get("Content-Type", "").startswith(COMPRESSIBLE)
    )


def _vary_on_accept_encoding(response: Response) -> None:
    # Written straight in when no Vary is there yet (the usual case): werkzeug's `vary`
    # parses the header into a set and writes it back, which S2's pages paid for.
    if "Vary" in response.headers:
        response.vary.add("Accept-Encoding")
    else:
        response.headers["Vary"] = "Accept-Encoding"


def version_tag(tag: str) -> str:
    """An ETag's value without the suffix a compressed answer added to it."""
    for suffix in ETAG_SUFFIXES:
        if tag.endswith(suffix):
            return tag.removesuffix(suffix)
    return tag
