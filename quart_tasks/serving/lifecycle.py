"""Callbacks for the moment a worker starts to shut down, before Hypercorn waits for its requests.

Hypercorn waits up to its graceful timeout for every open request to finish,
and a stream would never finish on its own: `quart-tasks serve` calls
`begin_draining()` in the worker as soon as it is told to stop, and the
callbacks end such requests cleanly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)
_callbacks: list[Callable[[], None]] = []


def on_draining(callback: Callable[[], None]) -> Callable[[], None]:
    """Register `callback`; returns the function that unregisters it."""
    _callbacks.append(callback)
    return lambda: _callbacks.remove(callback) if callback in _callbacks else None


def begin_draining() -> None:
    for callback in list(_callbacks):
        try:
            callback()
        except Exception:
            logger.exception("a shutdown callback failed")
