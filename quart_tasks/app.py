"""The application factory: services, middleware, blueprints, and start-up and shutdown in order."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any

from quart import Quart
from sqlalchemy.exc import SQLAlchemyError

from quart_tasks.auth.caller import authenticate, authenticate_websocket
from quart_tasks.auth.passwords import passwords_for
from quart_tasks.auth.routes import auth
from quart_tasks.auth.session_cache import SessionCache
from quart_tasks.auth.throttle import login_throttle_for
from quart_tasks.auth.tokens import VerifiedTokens
from quart_tasks.config import Config, load_config
from quart_tasks.live import LiveStreams, live
from quart_tasks.logs import configure_logging
from quart_tasks.ops.routes import ops, stop_watching_draining, watch_draining
from quart_tasks.services import Services
from quart_tasks.storage.sessions import Database, close_request_session
from quart_tasks.tasks.log.sequencer import Sequencer
from quart_tasks.tasks.routes import tasks
from quart_tasks.tasks.store.fast import FastTaskStore
from quart_tasks.tasks.store.portable import PortableTaskStore, uses_fast_path
from quart_tasks.users.bootstrap import ensure_bootstrap_admin
from quart_tasks.users.routes import users
from quart_tasks.web.access_log import init_access_log
from quart_tasks.web.compression import init_compression
from quart_tasks.web.cors import init_cors
from quart_tasks.web.docs import docs
from quart_tasks.web.errors import register_error_handlers
from quart_tasks.web.json_body import finish_reading_body, limit_body_size, require_json_object
from quart_tasks.web.keys import KeyRing
from quart_tasks.web.metrics import init_metrics
from quart_tasks.web.no_sessions import NoSessions
from quart_tasks.web.openapi import init_openapi
from quart_tasks.web.proxies import TrustedProxies, parse_networks
from quart_tasks.web.query_string import require_utf8_query
from quart_tasks.web.rate_limits import api_rate_limit_for, create_storage, init_rate_limit_headers
from quart_tasks.web.request_id import init_request_id
from quart_tasks.web.security_headers import init_security_headers
from quart_tasks.web.tracing import install_tracing, tracing_wanted

logger = logging.getLogger(__name__)

Step = Callable[[], Awaitable[None]]


def create_app(config: Config | None = None) -> Quart:
    """Build the app for `config`, or for the environment's `APP_ENV` when none is given.

    Building changes nothing outside the app but the `quart_tasks` loggers'
    handler: process-wide tuning is the serving worker's (`serving.tuning`).
    """
    config = load_config() if config is None else config
    app = Quart(__name__, static_folder=None)
    app.session_interface = NoSessions()  # type: ignore[assignment]
    app.config.from_mapping(config.as_mapping())
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])

    services = build_services(app.config)
    services.attach(app)
    install_middleware(app)
    register_blueprints(app)
    app.before_serving(partial(run_in_order, start_up(app, services)))
    app.after_serving(partial(run_in_order, shut_down(app, services)))
    if tracing_wanted(app.config):
        install_tracing(app)  # inside the proxy fix: its spans see the client's address
    if app.config["TRUSTED_PROXIES"]:
        app.asgi_app = TrustedProxies(app.asgi_app, parse_networks(app.config["TRUSTED_PROXIES"]))  # type: ignore[assignment]
    return app


def build_services(config: Mapping[str, Any]) -> Services:
    """Every long-lived object the app's requests share, made once, none of them connected."""
    fast_path = uses_fast_path(config)
    database = Database(config, driver=fast_path)
    rate_limit_storage = create_storage(config)
    sequencer = Sequencer(database)
    return Services(
        database=database,
        key_ring=KeyRing.from_config(config),
        verified_tokens=VerifiedTokens(),
        session_cache=SessionCache(config["AUTH_CACHE_SECONDS"]),
        passwords=passwords_for(config),
        rate_limit_storage=rate_limit_storage,
        login_throttle=login_throttle_for(config, rate_limit_storage),
        api_rate_limit=api_rate_limit_for(config, rate_limit_storage),
        tasks=FastTaskStore(database) if fast_path else PortableTaskStore(),
        sequencer=sequencer,
        live=LiveStreams(config, database, sequencer),
    )


def start_up(app: Quart, services: Services) -> Sequence[Step]:
    """Before serving, in this order: the database is connected before anything uses it."""
    return [
        services.database.connect,
        partial(services.sequencer.start, app),
        partial(services.live.start, app),
        partial(watch_draining, app),
        partial(_ensure_bootstrap_admin, app, services),
    ]


def shut_down(app: Quart, services: Services) -> Sequence[Step]:
    """After serving, in this order: the streams stop reading, and the rounds stop,
    before the engine goes."""
    return [
        partial(stop_watching_draining, app),
        partial(services.live.stop, app),
        partial(services.sequencer.stop, app),
        services.database.dispose,
        _as_step(services.passwords.close),
    ]


async def run_in_order(steps: Sequence[Step]) -> None:
    for step in steps:
        await step()


def install_middleware(app: Quart) -> None:
    """The hooks every request passes through, in the order they run."""
    init_request_id(app)
    init_access_log(app)
    init_metrics(app)
    init_security_headers(app)
    # In this order: an oversized or anonymous request is refused before its body is read.
    app.before_request(limit_body_size)
    app.before_request(require_utf8_query)
    app.before_request(authenticate)
    app.before_websocket(authenticate_websocket)
    app.before_request(require_json_object)
    app.after_request(finish_reading_body)
    init_cors(app)
    init_openapi(app)
    init_rate_limit_headers(app)
    init_compression(app, app.config)  # registered last, so it runs first after a view
    app.teardown_appcontext(close_request_session)
    register_error_handlers(app)


def register_blueprints(app: Quart) -> None:
    app.register_blueprint(auth, url_prefix="/api")
    app.register_blueprint(users, url_prefix="/api")
    app.register_blueprint(live, url_prefix="/api")  # before tasks: /tasks/events is no task id
    app.register_blueprint(tasks, url_prefix="/api")
    app.register_blueprint(docs)
    app.register_blueprint(ops)


def _as_step(close: Callable[[], None]) -> Step:
    async def step() -> None:
        close()

    return step


async def _ensure_bootstrap_admin(app: Quart, services: Services) -> None:
    """Also done by `quart-tasks migrate`; here so a first start works without it."""
    try:
        await ensure_bootstrap_admin(services.database.engine, services.passwords, app.config)  # type: ignore[arg-type]
    except (SQLAlchemyError, OSError):
        logger.warning("could not check the admin account at start-up", exc_info=True)
