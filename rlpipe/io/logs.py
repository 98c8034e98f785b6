"""The ``rlpipe`` logger: progress lines of writers and messages of the drivers go through it."""
from __future__ import annotations

import logging
import sys
from typing import IO

LOGGER_NAME = "rlpipe"


class _StderrHandler(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when a record is emitted, not as it was when the handler was made:
    notebooks and test runners replace (and close) it."""

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


def configure_logging(level: int | str = logging.INFO) -> logging.Logger:
    """Give the ``rlpipe`` logger one plain stderr handler (added once) and set its level.

    Records still propagate to the root logger, as rlberry's do, so a user's logging setup (or pytest's
    ``caplog``) sees them too.
    """
    logger = logging.getLogger(LOGGER_NAME)
    if not any(getattr(handler, "rlpipe_default", False) for handler in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.rlpipe_default = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(level)
    return logger


def default_level() -> int:
    """The ``rlpipe`` logger's own level, or INFO when nobody set one: progress is shown unless silenced."""
    level = logging.getLogger(LOGGER_NAME).level
    return level if level != logging.NOTSET else logging.INFO
