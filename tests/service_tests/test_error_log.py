"""Unexpected errors are logged with their traceback, rate-limited per failure."""

from __future__ import annotations

import logging

from optserve.api import errors


def _raise(kind: type[Exception]) -> BaseException:
    try:
        raise kind("boom")
    except Exception as error:  # the traceback is what is logged
        return error


def test_a_flood_of_one_failure_does_not_hide_another(caplog):
    logger = logging.getLogger("optserve.test_error_log")
    where = "GetSomething-test"
    first, other = _raise(KeyError), _raise(ZeroDivisionError)
    with caplog.at_level(logging.ERROR, logger=logger.name):
        for _ in range(5):
            errors.log_unexpected(logger, where, first)
        errors.log_unexpected(logger, where, other)
    logged = [r for r in caplog.records if r.name == logger.name]
    # the first KeyError and the ZeroDivisionError, each with its own traceback
    assert len(logged) == 2
    assert [r.exc_info[0] for r in logged if r.exc_info] == [KeyError, ZeroDivisionError]
