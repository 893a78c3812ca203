"""The SQLAlchemy internals this wing relies on, fenced (see `serving.fences`).

Written against SQLAlchemy 2.0 and 2.1 (`pyproject.toml` allows `<2.2`). The
engine checks them when it is made (`storage.engine.create_engine`), so an
upgrade that changed one stops the app at start-up with an error naming it.
"""

from __future__ import annotations

import sqlalchemy.util
import sqlalchemy.util.queue
from sqlalchemy.pool import AsyncAdaptedQueuePool, Pool, QueuePool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter

from quart_tasks.serving.fences import Fence, Touch, check_all

SQLALCHEMY = ("2.0.", "2.1.")

FAIR_POOL = Fence(
    name="fair pool queue (storage.pool)",
    library="sqlalchemy",
    versions=SQLALCHEMY,
    unnecessary_when="SQLAlchemy's asyncio pool hands a returned connection to its longest waiter",
    touches=(
        Touch(AsyncAdaptedQueuePool, "_queue_class", "attribute"),
        Touch(QueuePool.__init__, "_queue_class", "named in"),
        Touch(QueuePool._do_get, "get", "named in"),
        Touch(QueuePool._do_return_conn, "put", "named in"),
        Touch(sqlalchemy.util.queue, "QueueCommon", "class"),
        Touch(sqlalchemy.util.queue, "Empty", "class"),
        Touch(sqlalchemy.util.queue, "Full", "class"),
        Touch(sqlalchemy.util, "await_only", "function"),
    ),
)

DRIVER = Fence(
    name="statements straight on asyncpg (storage.driver)",
    library="sqlalchemy",
    versions=SQLALCHEMY,
    unnecessary_when=(
        "SQLAlchemy runs a compiled statement on a pooled connection at the driver's cost, "
        "and offers invalidating every connection older than a failed one"
    ),
    touches=(
        Touch(Pool, "_invalidate", "function", ("self", "connection", "exception", "_checkin")),
        Touch(SQLCompiler, "positiontup", "attribute"),
        Touch(SQLCompiler.__init__, "binds", "named in"),
        Touch(BindParameter.__init__, "expanding", "named in"),
        Touch(BindParameter.__init__, "required", "named in"),
        Touch(BindParameter, "effective_value", "attribute"),
    ),
)

FENCES = (FAIR_POOL, DRIVER)


def check_storage_internals() -> None:
    check_all(FENCES)
