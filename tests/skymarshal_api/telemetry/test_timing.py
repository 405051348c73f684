"""Server-Timing spans: the ``instrumentation`` span counts each moment once."""

from __future__ import annotations

import logging
import time

from skymarshal_api.telemetry.logs import InstrumentedStreamHandler
from skymarshal_api.telemetry.timing import (
    instrumentation_timed,
    server_timing_header,
    timing_spans,
    timing_start,
    timing_stop,
)


def test_a_block_inside_another_is_counted_once() -> None:
    timing_start()
    try:
        started = time.perf_counter()
        with instrumentation_timed(), instrumentation_timed():
            time.sleep(0.005)
        elapsed_ms = (time.perf_counter() - started) * 1000
        spent = timing_spans()["instrumentation"]
    finally:
        timing_stop()
    # Counted twice it would be at least twice the sleep, more than the whole elapsed time.
    assert 5 <= spent <= elapsed_ms


def test_a_log_line_written_by_an_observation_step_is_part_of_that_step(tmp_path) -> None:
    stream = (tmp_path / "log").open("w")
    logger = logging.getLogger("tests.timing")
    handler = InstrumentedStreamHandler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    timing_start()
    try:
        started = time.perf_counter()
        with instrumentation_timed():
            logger.warning("x" * 100_000)
            time.sleep(0.002)
        elapsed_ms = (time.perf_counter() - started) * 1000
        outside = timing_spans()["instrumentation"]
        logger.warning("alone")  # outside any step: the handler times itself
        assert timing_spans()["instrumentation"] > outside
    finally:
        timing_stop()
        logger.removeHandler(handler)
        logger.propagate = True
        stream.close()
    assert 2 <= outside <= elapsed_ms
    assert "alone" in (tmp_path / "log").read_text()


def test_nothing_is_counted_outside_a_request() -> None:
    timing_stop()
    with instrumentation_timed():
        pass
    assert timing_spans() == {}
    timing_start()
    try:
        with instrumentation_timed():
            pass
        assert server_timing_header(1.0).startswith("instrumentation;dur=")
    finally:
        timing_stop()
