"""``make bench`` section ``otel``: what carrying a request's trace costs with the app's own
X-Ray emitter (skymarshal_api/telemetry/tracing.py) and with OpenTelemetry's SDK, per
request, in this process, once each one's setup is done (as it would be before a SnapStart
snapshot).

One request is what an invoke traces: the caller's ``traceparent`` read, the request's
span, four spans inside it (the runtime call and three DynamoDB calls), then the request
ended. The app's emitter sends its X-Ray document over UDP to 127.0.0.1 (a port where
nothing listens). OpenTelemetry is set up as AgentCore's observability and ADOT set it up:
the AWS X-Ray ID generator, W3C and X-Ray propagation, spans exported over OTLP/HTTP
(here to a receiver on 127.0.0.1 that answers 200 to every export); on Lambda the handler
wrapper of ADOT's Python layer (opentelemetry-instrumentation-aws-lambda) calls the tracer
provider's ``force_flush`` at the end of every invocation, "in case of Lambda freeze", so
"Lambda" flushes after each request, and "server" leaves them to the
batch processor's own thread and counts that thread's work by the process's CPU time.

Run as ``python -m benchmarks.otel --requests N`` (``python -m benchmarks`` runs it in a
process of its own, with tracing on).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
INNER_SPANS = ("agentcore-runtime-websocket", "DynamoDB", "DynamoDB", "DynamoDB")


def _percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return f"p50 {statistics.median(ordered):.3f} ms, p95 {p95:.3f} ms (n={len(ordered)})"


def _measure(count: int, action: Callable[[], None]) -> tuple[list[float], float]:
    """Wall time of each call (ms) after 50 warm-up calls, and the process CPU time per
    call (ms, every thread: an exporter's work included)."""
    for _ in range(50):
        action()
    samples = []
    cpu_before = time.process_time()
    for _ in range(count):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples, (time.process_time() - cpu_before) * 1000 / count


class _OtlpReceiver(BaseHTTPRequestHandler):
    """Answers every OTLP/HTTP export with 200 and an empty ExportTraceServiceResponse."""

    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def _otlp_receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OtlpReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    finally:
        server.shutdown()
        server.server_close()


def _silent_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _emitter_request() -> Callable[[], None]:
    from skymarshal_api.telemetry.trace_context import trace_context_of
    from skymarshal_api.telemetry.tracing import (
        trace_request_begin,
        trace_request_end,
        trace_subsegment_begin,
    )

    def request() -> None:
        context = trace_context_of({"HTTP_TRACEPARENT": TRACEPARENT})
        trace = trace_request_begin(method="POST", path="/api/v1/invoke", context=context)
        assert trace is not None
        for name in INNER_SPANS:
            trace_subsegment_begin(trace, name).end()
        trace_request_end(trace, status=200, annotations={"operation": "invoke"}, error=False)

    return request


def _otel_request(endpoint: str, *, flush_each: bool) -> tuple[Callable[[], None], Any]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.propagate import set_global_textmap
    from opentelemetry.propagators.aws import AwsXRayPropagator
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    provider = TracerProvider(
        id_generator=AwsXRayIdGenerator(),
        resource=Resource.create({"service.name": "skymarshal-api"}),
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    propagator = CompositePropagator([TraceContextTextMapPropagator(), AwsXRayPropagator()])
    set_global_textmap(propagator)
    tracer = provider.get_tracer("skymarshal_api")

    def request() -> None:
        parent = propagator.extract({"traceparent": TRACEPARENT})
        with tracer.start_as_current_span(
            "POST /api/v1/invoke", context=parent, kind=SpanKind.SERVER
        ) as span:
            span.set_attribute("http.request.method", "POST")
            span.set_attribute("url.path", "/api/v1/invoke")
            for name in INNER_SPANS:
                with tracer.start_as_current_span(name, kind=SpanKind.CLIENT):
                    pass
            span.set_attribute("http.response.status_code", 200)
        if flush_each:
            provider.force_flush()

    return request, provider


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skymarshal_api.settings")
    os.environ["TRACING_ENABLED"] = "true"
    os.environ["AWS_XRAY_DAEMON_ADDRESS"] = f"127.0.0.1:{_silent_udp_port()}"
    import django

    django.setup()
    emitter, emitter_cpu = _measure(args.requests, _emitter_request())
    print("otel: the app's X-Ray emitter, per request", _percentiles(emitter), flush=True)
    print(f"otel:   CPU per request {emitter_cpu:.3f} ms", flush=True)
    with _otlp_receiver() as endpoint:
        for label, flush_each in (("Lambda (flushed each request)", True), ("server", False)):
            request, provider = _otel_request(endpoint, flush_each=flush_each)
            samples, cpu = _measure(args.requests, request)
            provider.force_flush()
            provider.shutdown()
            print(f"otel: OpenTelemetry SDK, {label}, per request", _percentiles(samples))
            print(f"otel:   CPU per request {cpu:.3f} ms (exporter thread included)", flush=True)
    print(
        "otel: the floor the issue sets: 1 ms a request; exports received:",
        _OtlpReceiver.received,
        flush=True,
    )


if __name__ == "__main__":
    main()
