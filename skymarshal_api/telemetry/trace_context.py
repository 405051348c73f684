"""A request's place in a distributed trace: W3C Trace Context (``traceparent``,
``tracestate``), W3C Baggage (``baggage``) and the X-Ray trace header (``X-Amzn-Trace-Id``),
parsed strictly, and the headers that carry the trace on to the runtime.

Unlike the headers of ``skymarshal_api.web.headers``, a trace header outside its grammar is
never a 400: W3C Trace Context (section 4.3, "Processing model") has a receiver that cannot
parse ``traceparent`` start a new trace and ignore ``tracestate``; a ``tracestate`` that
cannot be parsed (or has more than 32 list-members) is dropped on its own; a ``baggage``
outside its grammar or bounds (W3C Baggage: at most 64 list-members; here at most 4096
bytes) is dropped. The bounds on length are those InvokeAgentRuntime puts on the same
headers (traceparent 128, tracestate 512, X-Amzn-Trace-Id 128 characters), and for
baggage AgentCore Runtime's 4 KB limit on a forwarded header's value (its 8192 would not
pass gunicorn's 8190-byte limit on a header line either).

Where a trace comes from, first match wins: a valid ``traceparent``; else, on Lambda, the
invocation's ``_X_AMZN_TRACE_ID`` (Lambda's segment is in it; with tracing on the API
Gateway stage, that is API Gateway's trace); else a valid ``X-Amzn-Trace-Id`` (API Gateway
or a load balancer sets it); else a new trace. An X-Ray trace id ``1-<8 hex>-<24 hex>`` and a
W3C trace id (32 hex) are the same id: the 8 and the 24 digits concatenated.

The request's own span id is also the id of its X-Ray segment, so the ``traceparent``
returned to the caller names a span that X-Ray shows.
"""

from __future__ import annotations

import os
import re
import time
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

# For OpenAPI: version 00 exactly; a later version may carry more fields after a dash.
TRACEPARENT_PATTERN = "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-[\\x21-\\x7e]*)?$"
TRACEPARENT_MAX = 128
TRACESTATE_MAX = 512
TRACESTATE_MAX_MEMBERS = 32
BAGGAGE_MAX = 4096
BAGGAGE_MAX_MEMBERS = 64
XRAY_HEADER_MAX = 128
# AgentCore Runtime passes a header of this prefix to the agent without any allow-listing;
# each value at most 4 KB ("Pass custom headers to Amazon Bedrock AgentCore Runtime").
RUNTIME_CUSTOM_PREFIX = "X-Amzn-Bedrock-AgentCore-Runtime-Custom-"
XRAY_HEADER = "X-Amzn-Trace-Id"

_HEX = frozenset("0123456789abcdef")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_LAMBDA_TRACE_ENV = "_X_AMZN_TRACE_ID"
_LAMBDA_TASK_ROOT = "LAMBDA_TASK_ROOT"

# W3C Trace Context 3.3.1: list-member = key "=" value, with OWS around members.
_TRACESTATE_KEY = re.compile(
    r"[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13}"
)
_TRACESTATE_VALUE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")
# W3C Baggage: key is an RFC 7230 token; value baggage-octets (percent-encoded otherwise);
# properties after ";". Checked per member, loosely for properties: printable ASCII.
_BAGGAGE_MEMBER = re.compile(
    r"[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+[ \t]*=[ \t]*[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"
    r"[ \t]*(?:;[\x20-\x2b\x2d-\x7e]*)?"
)
_XRAY_ROOT = re.compile(r"1-([0-9a-f]{8})-([0-9a-f]{24})")


def _is_hex(text: str) -> bool:
    return all(c in _HEX for c in text)


@dataclass(frozen=True, slots=True)
class ParentContext:
    """What a caller's ``traceparent`` says: its trace, its span (our parent), sampled."""

    trace_id: str
    parent_id: str
    sampled: bool


def traceparent_parse(value: str | None) -> ParentContext | None:
    """``traceparent`` (W3C Trace Context 3.2), or None when it is invalid (a new trace
    starts). Version 00 is exactly ``00-<32 hex>-<16 hex>-<2 hex>``, lowercase, the ids
    not all zero; version ff is invalid; a later version is read as far as version 00's
    fields go, which must end the value or be followed by a dash."""
    if value is None:
        return None
    value = value.strip(" \t")
    if not 55 <= len(value) <= TRACEPARENT_MAX:
        return None
    version = value[:2]
    if not _is_hex(version) or version == "ff":
        return None
    if version == "00" and len(value) != 55:
        return None
    if len(value) > 55 and value[55] != "-":
        return None
    if value[2] != "-" or value[35] != "-" or value[52] != "-":
        return None
    trace_id, parent_id, flags = value[3:35], value[36:52], value[53:55]
    if not (_is_hex(trace_id) and _is_hex(parent_id) and _is_hex(flags)):
        return None
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return ParentContext(trace_id, parent_id, bool(int(flags, 16) & 0x01))


def tracestate_parse(value: str | None) -> str | None:
    """``tracestate`` (W3C Trace Context 3.3) as it is to be passed on (members joined by
    ","; empty members dropped), or None when absent, invalid, longer than 512 characters
    or of more than 32 list-members."""
    if not value or len(value) > TRACESTATE_MAX:
        return None
    members = []
    keys = set()
    for raw in value.split(","):
        member = raw.strip(" \t")
        if not member:
            continue
        key, equals, member_value = member.partition("=")
        if not equals or not _TRACESTATE_KEY.fullmatch(key):
            return None
        if not _TRACESTATE_VALUE.fullmatch(member_value) or key in keys:
            return None
        keys.add(key)
        members.append(member)
    if not members or len(members) > TRACESTATE_MAX_MEMBERS:
        return None
    return ",".join(members)


def baggage_parse(value: str | None) -> str | None:
    """``baggage`` (W3C Baggage) as received, or None when absent, longer than 4096
    characters, of more than 64 list-members, or outside its grammar."""
    if not value or len(value) > BAGGAGE_MAX:
        return None
    members = [member for member in value.split(",") if member.strip(" \t")]
    if not members or len(members) > BAGGAGE_MAX_MEMBERS:
        return None
    if not all(_BAGGAGE_MEMBER.fullmatch(member) for member in members):
        return None
    return value.strip(" \t")


@dataclass(frozen=True, slots=True)
class XRayHeader:
    """What an X-Amzn-Trace-Id says: the trace as a W3C id, the parent, the decision."""

    trace_id: str
    parent_id: str | None
    sampled: bool | None


def xray_header_parse(value: str | None) -> XRayHeader | None:
    """``X-Amzn-Trace-Id`` (``Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=0|1|?``, in
    any order, other fields ignored), or None when it has no valid Root. A Parent or
    Sampled outside its grammar is left out."""
    if not value or len(value) > XRAY_HEADER_MAX:
        return None
    fields: dict[str, str] = {}
    for part in value.split(";"):
        name, equals, field_value = part.strip(" \t").partition("=")
        if equals:
            fields.setdefault(name, field_value)
    root = _XRAY_ROOT.fullmatch(fields.get("Root", ""))
    if root is None:
        return None
    trace_id = root[1] + root[2]
    if trace_id == _ZERO_TRACE:
        return None
    parent = fields.get("Parent")
    if parent is not None and not (len(parent) == 16 and _is_hex(parent) and parent != _ZERO_SPAN):
        parent = None
    sampled = {"1": True, "0": False}.get(fields.get("Sampled", ""))
    return XRayHeader(trace_id, parent, sampled)


def xray_trace_id(trace_id: str) -> str:
    """The X-Ray form ``1-<8 hex>-<24 hex>`` of a W3C trace id."""
    return f"1-{trace_id[:8]}-{trace_id[8:]}"


def new_span_id() -> str:
    return os.urandom(8).hex()


def _new_trace_id() -> str:
    # X-Ray reads the first 8 digits as the trace's start time (epoch seconds): a new
    # trace id carries it, as AwsXRayIdGenerator's do, so X-Ray accepts the trace.
    return f"{int(time.time()):08x}{os.urandom(12).hex()}"


@dataclass(frozen=True, slots=True)
class TraceContext:
    """This service's span in a trace. ``parent_id`` is the caller's span, when the trace
    was continued; ``source`` says where it came from (traceparent, x-amzn-trace-id,
    lambda, new)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    sampled: bool
    source: str
    tracestate: str | None = None
    baggage: str | None = None

    @property
    def xray_trace_id(self) -> str:
        return xray_trace_id(self.trace_id)

    def traceparent(self, span_id: str | None = None) -> str:
        """The ``traceparent`` of a span of this trace (this service's by default). Only the
        sampled flag is set: W3C has the other flag bits set to zero."""
        return f"00-{self.trace_id}-{span_id or self.span_id}-{'01' if self.sampled else '00'}"

    def propagation_headers(self, span_id: str | None = None) -> dict[str, str]:
        """The headers that carry the trace to a callee whose parent is ``span_id`` (this
        service's span by default): W3C's, X-Ray's, and W3C's again under AgentCore
        Runtime's custom prefix, which reaches the agent without an allow-list."""
        span = span_id or self.span_id
        traceparent = self.traceparent(span)
        headers = {
            "traceparent": traceparent,
            XRAY_HEADER: f"Root={self.xray_trace_id};Parent={span};Sampled={int(self.sampled)}",
            f"{RUNTIME_CUSTOM_PREFIX}Traceparent": traceparent,
        }
        if self.tracestate:
            headers["tracestate"] = self.tracestate
            headers[f"{RUNTIME_CUSTOM_PREFIX}Tracestate"] = self.tracestate
        if self.baggage:
            headers["baggage"] = self.baggage
            headers[f"{RUNTIME_CUSTOM_PREFIX}Baggage"] = self.baggage
        return headers

    def stored(self) -> dict[str, str]:
        """What a background run keeps of the accepting request's trace: its traceparent
        (this service's span as the parent), tracestate and baggage."""
        stored = {"traceparent": self.traceparent()}
        if self.tracestate:
            stored["tracestate"] = self.tracestate
        if self.baggage:
            stored["baggage"] = self.baggage
        return stored


def _on_lambda() -> bool:
    return bool(os.environ.get(_LAMBDA_TASK_ROOT))


def trace_context_of(meta: Any) -> TraceContext:
    """The trace context of a request whose WSGI environ is ``meta`` (see the module
    docstring for where it comes from). Never raises."""
    baggage = baggage_parse(meta.get("HTTP_BAGGAGE"))
    parent = traceparent_parse(meta.get("HTTP_TRACEPARENT"))
    if parent is not None:
        return _span_under(
            parent,
            source="traceparent",
            tracestate=tracestate_parse(meta.get("HTTP_TRACESTATE")),
            baggage=baggage,
        )
    xray, source = None, "lambda"
    if _on_lambda():
        xray = xray_header_parse(os.environ.get(_LAMBDA_TRACE_ENV))
    if xray is None:
        xray, source = xray_header_parse(meta.get("HTTP_X_AMZN_TRACE_ID")), "x-amzn-trace-id"
    if xray is not None:
        return TraceContext(
            trace_id=xray.trace_id,
            span_id=new_span_id(),
            parent_id=xray.parent_id,
            sampled=xray.sampled is not False,
            source=source,
            baggage=baggage,
        )
    return TraceContext(
        trace_id=_new_trace_id(),
        span_id=new_span_id(),
        parent_id=None,
        sampled=True,
        source="new",
        baggage=baggage,
    )


def trace_context_resume(stored: dict[str, str] | None) -> TraceContext | None:
    """A new span in the trace a background run's accepting request stored (``stored()``),
    its parent the accepting request's span; None for a run stored without one."""
    parent = traceparent_parse(stored.get("traceparent")) if stored else None
    if stored is None or parent is None:
        return None
    return _span_under(
        parent,
        source="run",
        tracestate=tracestate_parse(stored.get("tracestate")),
        baggage=baggage_parse(stored.get("baggage")),
    )


def _span_under(
    parent: ParentContext, *, source: str, tracestate: str | None, baggage: str | None
) -> TraceContext:
    """A new span of this service in the parent's trace, its parent the parent's span."""
    return TraceContext(
        trace_id=parent.trace_id,
        span_id=new_span_id(),
        parent_id=parent.parent_id,
        sampled=parent.sampled,
        source=source,
        tracestate=tracestate,
        baggage=baggage,
    )


_current: ContextVar[TraceContext | None] = ContextVar("skymarshal_trace", default=None)


def trace_context_current() -> TraceContext | None:
    """The trace context of the request or background run being served."""
    return _current.get()


def trace_context_use(context: TraceContext | None) -> Token[TraceContext | None]:
    return _current.set(context)


def trace_context_reset(token: Token[TraceContext | None]) -> None:
    _current.reset(token)
