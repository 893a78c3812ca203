"""The application factory."""

from __future__ import annotations

import logging

from quart import Quart, current_app
from sqlalchemy.exc import SQLAlchemyError

from quart_tasks.auth.caller import authenticate, authenticate_websocket
from quart_tasks.auth.passwords import init_passwords, passwords
from quart_tasks.auth.routes import auth
from quart_tasks.auth.session_cache import SessionCache
from quart_tasks.auth.throttle import init_login_throttle
from quart_tasks.auth.tokens import init_tokens
from quart_tasks.config import Config, load_config
from quart_tasks.live import init_live, live
from quart_tasks.logs import configure_logging
from quart_tasks.ops.routes import ops
from quart_tasks.serving.garbage_collection import init_garbage_collection
from quart_tasks.storage.sessions import Database, database
from quart_tasks.tasks.routes import tasks
from quart_tasks.users.bootstrap import ensure_bootstrap_admin
from quart_tasks.users.routes import users
from quart_tasks.web.access_log import init_access_log
from quart_tasks.web.cors import init_cors
from quart_tasks.web.docs import docs
from quart_tasks.web.errors import register_error_handlers
from quart_tasks.web.json_body import finish_reading_body, limit_body_size, require_json_object
from quart_tasks.web.metrics import init_metrics
from quart_tasks.web.no_sessions import NoSessions
from quart_tasks.web.openapi import init_openapi
from quart_tasks.web.proxies import TrustedProxies, parse_networks
from quart_tasks.web.query_string import require_utf8_query
from quart_tasks.web.rate_limits import init_api_rate_limit, init_rate_limit_storage
from quart_tasks.web.request_id import init_request_id
from quart_tasks.web.security_headers import init_security_headers

logger = logging.getLogger(__name__)


def create_app(config: Config | None = None) -> Quart:
    """Build the app for `config`, or for the environment's `APP_ENV` when none is given."""
    config = load_config() if config is None else config
    app = Quart(__name__, static_folder=None)
    app.session_interface = NoSessions()  # type: ignore[assignment]
    app.config.from_mapping(config.as_mapping())
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])

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
    init_live(app)  # before the database: at shutdown it stops before the engine goes
    Database().init_app(app)
    init_tokens(app)
    app.extensions["session_cache"] = SessionCache(app.config["AUTH_CACHE_SECONDS"])
    init_passwords(app)
    storage = init_rate_limit_storage(app)
    init_login_throttle(app, storage)
    init_api_rate_limit(app, storage)
    app.before_serving(_ensure_bootstrap_admin)
    init_garbage_collection(app)  # last: what starting up made is frozen

    app.register_blueprint(auth, url_prefix="/api")
    app.register_blueprint(users, url_prefix="/api")
    app.register_blueprint(live, url_prefix="/api")  # before tasks: /tasks/events is no task id
    app.register_blueprint(tasks, url_prefix="/api")
    app.register_blueprint(docs)
    app.register_blueprint(ops)
    register_error_handlers(app)
    if app.config["TRUSTED_PROXIES"]:
        app.asgi_app = TrustedProxies(app.asgi_app, parse_networks(app.config["TRUSTED_PROXIES"]))  # type: ignore[assignment]
    return app


async def _ensure_bootstrap_admin() -> None:
    """Also done by `quart-tasks migrate`; here so a first start works without it."""
    try:
        await ensure_bootstrap_admin(database().engine, passwords(), current_app.config)  # type: ignore[arg-type]
    except (SQLAlchemyError, OSError):
        logger.warning("could not check the admin account at start-up", exc_info=True)
