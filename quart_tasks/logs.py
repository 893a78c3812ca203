"""Log records of the `quart_tasks` loggers go to stderr at `LOG_LEVEL`."""

from __future__ import annotations

import logging

LOGGER_NAME = "quart_tasks"


def configure_logging(level: str) -> None:
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
