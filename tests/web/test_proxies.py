"""`X-Forwarded-For` is believed only from `TRUSTED_PROXIES`."""

from __future__ import annotations

from typing import Any

import pytest

from quart_tasks.web.proxies import TrustedProxies, parse_networks


async def client_seen(
    peer: str, headers: list[tuple[bytes, bytes]], trusted: str = "10.0.0.0/8, 127.0.0.1"
) -> tuple[Any, str]:
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], _receive: Any, _send: Any) -> None:
        seen.update(scope)

    middleware = TrustedProxies(app, parse_networks(trusted))
    await middleware(
        {"type": "http", "client": (peer, 5000), "headers": headers, "scheme": "http"}, None, None
    )
    return seen["client"][0], seen["scheme"]


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("10.1.2.3", b"203.0.113.9", "203.0.113.9"),
        ("10.1.2.3", b"198.51.100.1, 203.0.113.9, 10.9.9.9", "203.0.113.9"),
        ("127.0.0.1", b"203.0.113.9", "203.0.113.9"),
        ("203.0.113.50", b"1.2.3.4", "203.0.113.50"),  # not a proxy: its claim is ignored
        ("10.1.2.3", b"not-an-address, 10.2.2.2", "not-an-address"),
        ("10.1.2.3", b"10.2.2.2", "10.1.2.3"),  # only proxies: keep the socket's address
    ],
)
async def test_the_client_is_the_first_untrusted_address_from_the_right(
    peer: str, forwarded: bytes, expected: str
) -> None:
    client, _ = await client_seen(peer, [(b"x-forwarded-for", forwarded)])

    assert client == expected


async def test_the_scheme_is_taken_from_a_trusted_proxy_only() -> None:
    trusted = await client_seen("10.0.0.1", [(b"x-forwarded-proto", b"https")])
    untrusted = await client_seen("203.0.113.1", [(b"x-forwarded-proto", b"https")])

    assert trusted[1] == "https"
    assert untrusted[1] == "http"
