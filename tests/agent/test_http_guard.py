"""`evolve serve`'s connection guard, the parts without a server: log lines rate-limited, connections fitted to the
open files this process may hold (the server itself: tests/e2e/test_serve_limits.py)."""

from __future__ import annotations

import io
import logging
import resource
import time

import pytest

from agent.http_guard import ConnectionLimits, RepeatFilter, fit_to_open_files


def logger_into(stream: io.StringIO, **options) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.addFilter(RepeatFilter(**options))
    log = logging.getLogger(f"test.guard.{id(stream)}")
    log.handlers, log.propagate, log.level = [handler], False, logging.INFO
    return log


def test_a_flood_of_one_line_is_a_few_lines_then_a_count():
    out = io.StringIO()
    log = logger_into(out, every_s=0.2, burst=3)
    for peer in range(1000):
        log.warning("closed a connection from %s", f"10.0.0.{peer}")  # one kind: the template, whatever its values
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[0] == "closed a connection from 10.0.0.0"
    assert lines[2].endswith("(more like this within 0.2 s are counted, not logged)")
    time.sleep(0.25)
    log.warning("closed a connection from %s", "10.0.0.1")
    assert out.getvalue().splitlines()[3] == ("closed a connection from 10.0.0.1 (997 more like this in the last "
                                              "0.2 s were not logged)")


def test_other_lines_pass_and_all_lines_together_are_capped():
    out = io.StringIO()
    log = logger_into(out, every_s=60, burst=2, total=10)
    log.warning("one")
    log.error("one")  # another level is another kind
    assert out.getvalue().splitlines() == ["one", "one"]
    for number in range(500):
        log.warning(f"line {number} built with an f-string")  # each its own kind: the total cap holds them
    assert len(out.getvalue().splitlines()) == 10


def test_connections_are_fitted_to_the_open_files_allowed():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard limit on open files here")
    said = []
    fitted = fit_to_open_files(ConnectionLimits(limit_concurrency=hard), said.append)
    assert fitted.limit_concurrency == hard - ConnectionLimits.files_reserved
    assert f"--limit-concurrency {hard} needs {hard + 256} open files" in said[0]
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard  # raised as far as allowed first
    said.clear()
    assert fit_to_open_files(ConnectionLimits(limit_concurrency=100), said.append).limit_concurrency == 100
    assert not said
