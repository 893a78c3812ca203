"""The patches below Hypercorn and SQLAlchemy fit the installed versions, and a
library that changed under one stops start-up with an error naming it."""

from __future__ import annotations

from typing import Any

import hypercorn.asyncio.run
import hypercorn.protocol
import pytest
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.ws_stream import WSStream
from sqlalchemy.pool import Pool

from quart_tasks.serving import fences
from quart_tasks.serving.client_close import PromptlyClosingTCPServer
from quart_tasks.serving.direct_streams import DirectStreamsH11Protocol
from quart_tasks.serving.fences import FenceBroken
from quart_tasks.serving.patches import FENCES as SERVING_FENCES
from quart_tasks.serving.patches import install_serving_patches
from quart_tasks.serving.response_writes import OneWriteH11Protocol
from quart_tasks.serving.stop_drain import (
    DrainingH2Protocol,
    DrainingH11Protocol,
    DrainingTCPServer,
)
from quart_tasks.serving.supervisor import run_worker
from quart_tasks.storage.engine import create_engine
from quart_tasks.storage.internals import FENCES as STORAGE_FENCES


@pytest.fixture(autouse=True)
def hypercorn_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a test installs into Hypercorn's modules is undone after it."""
    monkeypatch.setattr(hypercorn.asyncio.run, "TCPServer", TCPServer)
    monkeypatch.setattr(hypercorn.protocol, "H11Protocol", H11Protocol)
    monkeypatch.setattr(hypercorn.protocol, "H2Protocol", H2Protocol)
    monkeypatch.setattr(hypercorn.protocol.h11, "WSStream", WSStream)


@pytest.mark.parametrize("fence", SERVING_FENCES + STORAGE_FENCES, ids=lambda fence: fence.name)
def test_every_fence_fits_the_installed_library(fence: fences.Fence) -> None:
    fence.check()


def test_installing_replaces_hypercorns_classes() -> None:
    install_serving_patches()
    assert hypercorn.asyncio.run.TCPServer is DrainingTCPServer  # type: ignore[attr-defined]
    assert hypercorn.protocol.H11Protocol is DirectStreamsH11Protocol  # type: ignore[attr-defined]
    assert hypercorn.protocol.H2Protocol is DrainingH2Protocol  # type: ignore[attr-defined]
    # Each adds its patch to the others'.
    assert issubclass(DrainingTCPServer, PromptlyClosingTCPServer)
    assert issubclass(DirectStreamsH11Protocol, DrainingH11Protocol)
    assert issubclass(DrainingH11Protocol, OneWriteH11Protocol)


def test_a_method_gone_from_hypercorn_stops_the_install_naming_the_patch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(TCPServer, "_read_data")
    with pytest.raises(FenceBroken, match=r"'prompt close \(serving.client_close\)'") as broken:
        install_serving_patches()
    assert "TCPServer._read_data is gone" in str(broken.value)
    assert hypercorn.asyncio.run.TCPServer is TCPServer  # type: ignore[attr-defined]
    assert hypercorn.protocol.H11Protocol is H11Protocol  # type: ignore[attr-defined]


def test_a_method_whose_parameters_changed_stops_the_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def send_h11_event(self: Any, event: Any, *, flush: bool) -> None:
        raise AssertionError("never called")

    monkeypatch.setattr(H11Protocol, "_send_h11_event", send_h11_event)
    with pytest.raises(FenceBroken, match=r"one write per response") as broken:
        install_serving_patches()
    assert "now takes ('self', 'event', 'flush')" in str(broken.value)


def test_another_hypercorn_release_stops_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fences, "version", lambda library: "0.19.0")
    with pytest.raises(FenceBroken, match=r"hypercorn is 0\.19\.0") as broken:
        install_serving_patches()
    assert "written for hypercorn 0.18.x" in str(broken.value)


def test_a_worker_stops_before_serving_when_a_patch_no_longer_fits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(H11Protocol, "_send_h11_event")

    class Unused:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the worker went on to use {name}")

    with pytest.raises(FenceBroken, match=r"one write per response"):
        run_worker(Unused(), Unused(), Unused())  # type: ignore[arg-type]


def test_an_engine_is_not_made_when_sqlalchemy_changed_under_the_driver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(Pool, "_invalidate")
    with pytest.raises(FenceBroken, match=r"statements straight on asyncpg"):
        create_engine({"DATABASE_URL": "sqlite+aiosqlite:///:memory:"})
