"""The trace headers' parsers (W3C Trace Context, W3C Baggage, X-Amzn-Trace-Id) and where a
request's trace comes from."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skymarshal_api.telemetry.trace_context import (
    RUNTIME_CUSTOM_PREFIX,
    TRACEPARENT_PATTERN,
    baggage_parse,
    trace_context_of,
    trace_context_resume,
    traceparent_parse,
    tracestate_parse,
    xray_header_parse,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{PARENT}-01"


def _hex(n: int) -> st.SearchStrategy[str]:
    return st.text("0123456789abcdef", min_size=n, max_size=n)


def test_a_version_00_traceparent_is_read() -> None:
    parent = traceparent_parse(VALID)
    assert parent is not None
    assert (parent.trace_id, parent.parent_id, parent.sampled) == (TRACE, PARENT, True)
    unsampled = traceparent_parse(f"00-{TRACE}-{PARENT}-00")
    assert unsampled is not None
    assert unsampled.sampled is False


@pytest.mark.parametrize(
    "value",
    [
        "",
        VALID.upper(),
        f"00-{TRACE.upper()}-{PARENT}-01",  # uppercase hex is invalid
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"ff-{TRACE}-{PARENT}-01",  # version ff is invalid
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE}-{PARENT}-1",
        f"00-{TRACE[:-1]}-{PARENT}-01",
        f"00_{TRACE}_{PARENT}_01",
        f"0g-{TRACE}-{PARENT}-01",
        f"00-{TRACE}-{PARENT}-0g",
        f"01-{TRACE}-{PARENT}-01x",  # a later version's fields end or go on after a dash
        f"{VALID}, {VALID}",  # two headers, joined by the server
        "00-" + "٣" * 32 + f"-{PARENT}-01",  # digits of another script
    ],
)
def test_an_invalid_traceparent_is_none(value: str) -> None:
    assert traceparent_parse(value) is None


def test_a_later_version_is_read_as_far_as_version_00_goes() -> None:
    parent = traceparent_parse(f"cc-{TRACE}-{PARENT}-01-what-the-future-will-bring")
    assert parent is not None
    assert parent.trace_id == TRACE
    assert traceparent_parse(f"01-{TRACE}-{PARENT}-00") is not None


@given(_hex(2).filter(lambda v: v != "ff"), _hex(32), _hex(16), _hex(2))
def test_every_well_formed_traceparent_round_trips(
    version: str, trace_id: str, parent_id: str, flags: str
) -> None:
    value = f"{version}-{trace_id}-{parent_id}-{flags}"
    parent = traceparent_parse(value)
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        assert parent is None
        return
    assert parent is not None
    assert (parent.trace_id, parent.parent_id) == (trace_id, parent_id)
    assert parent.sampled == bool(int(flags, 16) & 1)
    assert re.fullmatch(TRACEPARENT_PATTERN[1:-1], value)


@given(st.text(max_size=80))
def test_any_text_is_parsed_or_refused_never_raises(value: str) -> None:
    parent = traceparent_parse(value)
    if parent is not None:
        assert re.fullmatch("[0-9a-f]{32}", parent.trace_id)
        assert re.fullmatch("[0-9a-f]{16}", parent.parent_id)
    tracestate_parse(value)
    baggage_parse(value)
    xray_header_parse(value)


def test_tracestate_is_kept_when_valid() -> None:
    assert tracestate_parse("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7,,") == (
        "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    )
    assert tracestate_parse("tenant@vendor=x") == "tenant@vendor=x"


@pytest.mark.parametrize(
    "value",
    [
        "Congo=t61",  # keys are lowercase
        "congo",  # no value
        "congo=a=b",  # "=" is not a value character
        "congo=a,congo=b",  # a key twice
        ",".join(f"k{n}=v" for n in range(33)),  # more than 32 members
        "k=" + "v" * 600,  # longer than 512
        "k=v\x01",
    ],
)
def test_an_invalid_tracestate_is_dropped(value: str) -> None:
    assert tracestate_parse(value) is None


def test_32_tracestate_members_are_kept() -> None:
    value = ",".join(f"k{n}=v" for n in range(32))
    assert tracestate_parse(value) == value


def test_baggage_is_passed_through_within_its_bounds() -> None:
    value = "userId=alice,serverNode=DF%2028,isProduction=false;p=1"
    assert baggage_parse(value) == value
    assert baggage_parse(",".join(f"k{n}=v" for n in range(65))) is None
    assert baggage_parse("k=" + "v" * 4094) is not None
    assert baggage_parse("k=" + "v" * 4095) is None
    assert baggage_parse("not a member") is None
    assert baggage_parse('k="quoted"') is None


def test_the_xray_header_is_read_in_any_order() -> None:
    header = xray_header_parse(
        f"Self=1-67891234-12456789abcdef012345678;Root=1-{TRACE[:8]}-{TRACE[8:]};"
        f"Parent={PARENT};Sampled=0"
    )
    assert header is not None
    assert (header.trace_id, header.parent_id, header.sampled) == (TRACE, PARENT, False)
    bare = xray_header_parse(f"Root=1-{TRACE[:8]}-{TRACE[8:]}")
    assert bare is not None
    assert (bare.parent_id, bare.sampled) == (None, None)
    assert xray_header_parse(f"Root=1-{TRACE[:8]}-{TRACE[8:].upper()}") is None
    assert xray_header_parse("Root=2-5759e988-bd862e3fe1be46a994272793") is None
    assert xray_header_parse(f"Parent={PARENT}") is None


def test_a_traceparent_is_continued_before_an_xray_header() -> None:
    context = trace_context_of(
        {
            "HTTP_TRACEPARENT": VALID,
            "HTTP_TRACESTATE": "congo=t61rcWkgMzE",
            "HTTP_BAGGAGE": "userId=alice",
            "HTTP_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793",
        }
    )
    assert (context.trace_id, context.parent_id, context.source) == (TRACE, PARENT, "traceparent")
    assert context.span_id != PARENT
    assert re.fullmatch("[0-9a-f]{16}", context.span_id)
    assert context.traceparent() == f"00-{TRACE}-{context.span_id}-01"
    assert context.xray_trace_id == f"1-{TRACE[:8]}-{TRACE[8:]}"
    headers = context.propagation_headers("1111111111111111")
    assert headers == {
        "traceparent": f"00-{TRACE}-1111111111111111-01",
        "tracestate": "congo=t61rcWkgMzE",
        "baggage": "userId=alice",
        "X-Amzn-Trace-Id": f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent=1111111111111111;Sampled=1",
        f"{RUNTIME_CUSTOM_PREFIX}Traceparent": f"00-{TRACE}-1111111111111111-01",
        f"{RUNTIME_CUSTOM_PREFIX}Tracestate": "congo=t61rcWkgMzE",
        f"{RUNTIME_CUSTOM_PREFIX}Baggage": "userId=alice",
    }


def test_an_invalid_traceparent_falls_back_to_the_xray_header_and_drops_tracestate() -> None:
    context = trace_context_of(
        {
            "HTTP_TRACEPARENT": "00-nonsense",
            "HTTP_TRACESTATE": "congo=t61rcWkgMzE",
            "HTTP_X_AMZN_TRACE_ID": (
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8"
            ),
        }
    )
    assert context.trace_id == "5759e988bd862e3fe1be46a994272793"
    assert (context.parent_id, context.source, context.tracestate) == (
        "53995c3f42cd8ad8",
        "x-amzn-trace-id",
        None,
    )


def test_without_trace_headers_a_new_trace_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    first, second = trace_context_of({}), trace_context_of({"HTTP_TRACEPARENT": "junk"})
    assert first.source == second.source == "new"
    assert first.trace_id != second.trace_id
    assert first.parent_id is None
    assert first.sampled


def test_on_lambda_the_invocations_trace_is_continued(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    monkeypatch.setenv(
        "_X_AMZN_TRACE_ID",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    )
    # Its trace comes before an X-Amzn-Trace-Id of the event (API Gateway's, when the stage
    # does not trace): Lambda's segment is in the invocation's trace.
    context = trace_context_of({"HTTP_X_AMZN_TRACE_ID": "Root=1-6b104c23-cc5ee7de146e4783b28f251c"})
    assert (context.trace_id, context.source) == ("5759e988bd862e3fe1be46a994272793", "lambda")
    assert context.parent_id == "53995c3f42cd8ad8"


def test_a_stored_trace_is_resumed_as_a_child_of_the_accepting_request() -> None:
    accepting = trace_context_of({"HTTP_TRACEPARENT": VALID, "HTTP_BAGGAGE": "a=b"})
    resumed = trace_context_resume(accepting.stored())
    assert resumed is not None
    assert (resumed.trace_id, resumed.parent_id, resumed.baggage) == (
        TRACE,
        accepting.span_id,
        "a=b",
    )
    assert trace_context_resume(None) is None
    assert trace_context_resume({"traceparent": "junk"}) is None
