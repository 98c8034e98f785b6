"""rlpipe.io.logs: the ``rlpipe`` logger gets one plain handler writing to whatever ``sys.stderr`` is when a record
is emitted, records still reach the root logger, and the default level is INFO unless someone set one."""
from __future__ import annotations

import io
import logging
import sys

import pytest

from rlpipe.io.logs import LOGGER_NAME, configure_logging, default_level


@pytest.fixture
def logger():
    """The ``rlpipe`` logger bare (no handlers, level NOTSET), restored as it was afterwards."""
    logger = logging.getLogger(LOGGER_NAME)
    handlers, level, propagate = logger.handlers[:], logger.level, logger.propagate
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


def _defaults(logger: logging.Logger) -> list[logging.Handler]:
    return [handler for handler in logger.handlers if getattr(handler, "rlpipe_default", False)]


def test_configure_logging_returns_the_rlpipe_logger_at_the_level_asked(logger):
    assert configure_logging(logging.DEBUG) is logger and logger.name == "rlpipe"
    assert logger.level == logging.DEBUG
    configure_logging("WARNING")
    assert logger.level == logging.WARNING


def test_the_handler_is_added_once_and_a_users_handlers_are_kept(logger):
    mine = logging.NullHandler()
    logger.addHandler(mine)
    configure_logging()
    configure_logging(logging.DEBUG)
    assert len(_defaults(logger)) == 1 and mine in logger.handlers and len(logger.handlers) == 2
    assert logger.level == logging.DEBUG


def test_messages_are_plain_lines_on_stderr_filtered_by_level(logger, monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging(logging.INFO)
    logger.debug("hidden")
    logger.info("step %d of %d", 3, 10)
    logging.getLogger(f"{LOGGER_NAME}.core.fitting").warning("from a child")
    assert stream.getvalue() == "step 3 of 10\nfrom a child\n"


def test_the_handler_follows_sys_stderr_when_it_is_replaced_and_closed(logger, monkeypatch):
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging()
    logger.info("one")
    first_text = first.getvalue()
    first.close()  # as a notebook or a test runner does with the stream it replaces
    monkeypatch.setattr(sys, "stderr", second)
    logger.info("two")
    assert first_text == "one\n" and second.getvalue() == "two\n"


def test_records_still_propagate_to_the_root_logger(logger, caplog, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    configure_logging()
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        logger.info("seen by the root")
    assert logger.propagate and [record.getMessage() for record in caplog.records] == ["seen by the root"]


def test_default_level_is_info_until_someone_sets_one(logger):
    assert default_level() == logging.INFO
    logger.setLevel(logging.ERROR)
    assert default_level() == logging.ERROR
    configure_logging(logging.DEBUG)
    assert default_level() == logging.DEBUG
