"""Client addresses behind proxies: `X-Forwarded-For` is believed only from `TRUSTED_PROXIES`.

Walking the header from the right, each address a trusted proxy added is
skipped; the first one that is not trusted is the client. A request that did
not come from a trusted proxy keeps its socket's address, whatever it claims.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(setting: str) -> list[Network]:
    return [
        ipaddress.ip_network(item.strip(), strict=False)
        for item in setting.split(",")
        if item.strip()
    ]


class TrustedProxies:
    def __init__(self, app: Any, networks: Iterable[Network]) -> None:
        self.app = app
        self.networks = list(networks)

    def trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client and self.trusted(client[0]):
            scope = dict(scope)
            forwarded: list[str] = []
            proto = None
            for name, value in scope.get("headers", []):
                if name == b"x-forwarded-for":
                    forwarded += [part.strip() for part in value.decode("latin-1").split(",")]
                elif name == b"x-forwarded-proto":
                    proto = value.decode("latin-1").split(",")[-1].strip().lower()
            for address in reversed([a for a in forwarded if a]):
                if not self.trusted(address):
                    scope["client"] = (address, 0)
                    break
            if proto in ("http", "https"):
                scope["scheme"] = (
                    proto if scope["type"] == "http" else {"http": "ws", "https": "wss"}[proto]
                )
        await self.app(scope, receive, send)
