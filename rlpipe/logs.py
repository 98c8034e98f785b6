"""The ``rlpipe`` logger: progress lines of writers and messages of the drivers go through it."""
from __future__ import annotations

import logging

LOGGER_NAME = "rlpipe"


def configure_logging(level: int | str = logging.INFO) -> logging.Logger:
    """Give the ``rlpipe`` logger one plain stderr handler (added once) and set its level."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(getattr(handler, "rlpipe_default", False) for handler in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.rlpipe_default = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)
    return logger


def default_level() -> int:
    """The ``rlpipe`` logger's own level, or INFO when nobody set one: progress is shown unless silenced."""
    level = logging.getLogger(LOGGER_NAME).level
    return level if level != logging.NOTSET else logging.INFO
