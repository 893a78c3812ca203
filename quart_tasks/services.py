"""The app's services: one typed container, built by the factory, one per app.

Every long-lived object that requests share is a field here, made once by
`app.build_services` and reached through `services()`; the factory also lists,
in order, what starts them before serving and stops them after. The types are
imported for the type checker only: this module sits below every wing, and
each wing reaches its services through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from quart import Quart, current_app

if TYPE_CHECKING:
    from limits.aio.storage import Storage

    from quart_tasks.auth.passwords import Passwords
    from quart_tasks.auth.session_cache import SessionCache
    from quart_tasks.auth.throttle import LoginThrottle
    from quart_tasks.auth.tokens import VerifiedTokens
    from quart_tasks.live import LiveStreams
    from quart_tasks.storage.sessions import Database
    from quart_tasks.tasks.log.sequencer import Sequencer
    from quart_tasks.tasks.store.interface import TaskStore
    from quart_tasks.web.keys import KeyRing
    from quart_tasks.web.rate_limits import ApiRateLimit

EXTENSION = "quart_tasks"


@dataclass(frozen=True, slots=True)
class Services:
    database: Database
    key_ring: KeyRing
    """The keys that sign access tokens and list cursors."""
    verified_tokens: VerifiedTokens
    session_cache: SessionCache[object]
    passwords: Passwords
    rate_limit_storage: Storage
    """Redis when `REDIS_URL` is set, else this process's memory."""
    login_throttle: LoginThrottle
    api_rate_limit: ApiRateLimit | None
    """None unless `RATE_LIMIT` is set."""
    tasks: TaskStore
    """`FastTaskStore` on PostgreSQL unless `DB_FAST_PATH` is off, else `PortableTaskStore`."""
    sequencer: Sequencer
    """Positions the events this process commits (`tasks.log.rounds`)."""
    live: LiveStreams

    def attach(self, app: Quart) -> None:
        app.extensions[EXTENSION] = self


def services_of(app: Quart) -> Services:
    found: Services = app.extensions[EXTENSION]
    return found


def services() -> Services:
    """The current app's services."""
    found: Services = current_app.extensions[EXTENSION]
    return found
