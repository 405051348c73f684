"""The shared base view of every endpoint that needs a caller."""

from __future__ import annotations

import contextvars
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from skymarshal_api.auth.authentication import principal_of
from skymarshal_api.limits.rate_limits import (
    RateLimitState,
    rate_limit_consume,
    rate_limit_consume_local,
)
from skymarshal_api.telemetry.observation import request_principal_bind
from skymarshal_api.telemetry.timing import timing_add, timing_spans, timing_start

# Threads that count a caller's request while the view reads (``rate_limit_beside_reads``):
# made on first use, so none exists in a SnapStart snapshot or before gunicorn forks.
_beside = ThreadPoolExecutor(max_workers=8, thread_name_prefix="rate-limit")


class AuthenticatedApi(APIView):
    """Base of every endpoint that needs a caller: the default authentication (SigV4 or
    API Gateway identity), then the caller's rate limit for ``rate_limit_scope``, whose
    X-RateLimit headers go on the response.

    With ``rate_limit_beside_reads``, a GET (or HEAD) whose count needs the table (not the
    process's lease) is counted while the view reads, not before: a read changes nothing,
    so it may run before its count is known, and a caller over the limit still gets the
    429 instead of what was read. Only for reads that answer at once (not a wait or an
    event stream, which would hold a refused caller)."""

    rate_limit_scope = "default"
    rate_limit_beside_reads = False

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        principal = principal_of(request)
        request_principal_bind(principal.verified_arn)
        # Counted per owner: in IDENTITY_MODE=role, new session names add no allowance.
        arn, scope = principal.arn, self.rate_limit_scope
        if self.rate_limit_beside_reads and request.method in ("GET", "HEAD"):
            # Served by this process's lease (or known refused): no table call to overlap,
            # so none of a thread's hand-off either.
            state = rate_limit_consume_local(principal_arn=arn, scope=scope)
            if state is not None:
                request.rate_limit_headers = state.headers()  # type: ignore[attr-defined]
                return
            context = contextvars.copy_context()
            request.rate_limit_counting = _beside.submit(  # type: ignore[attr-defined]
                context.run, _count_apart, arn, scope
            )
            return
        state = rate_limit_consume(principal_arn=arn, scope=scope)
        request.rate_limit_headers = state.headers()  # type: ignore[attr-defined]

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        counting: Future[tuple[RateLimitState, float]] | None = getattr(
            request, "rate_limit_counting", None
        )
        if counting is not None:
            request.rate_limit_counting = None  # type: ignore[attr-defined]
            try:
                state, storage_ms = counting.result()
            except Exception as exc:  # RateLimited: the 429 replaces what was read
                response = self.handle_exception(exc)
            else:
                request.rate_limit_headers = state.headers()  # type: ignore[attr-defined]
                timing_add("ratelimit", storage_ms)
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in getattr(request, "rate_limit_headers", {}).items():
            response.setdefault(name, value)
        return response


def _count_apart(principal_arn: str, scope: str) -> tuple[RateLimitState, float]:
    """``rate_limit_consume`` in a copy of the request's context, its storage time kept
    apart (the request's ``persistence`` is the read's; this ran beside it): the state and
    that time."""
    timing_start()
    state = rate_limit_consume(principal_arn=principal_arn, scope=scope)
    return state, timing_spans().get("persistence", 0.0)


def query_validated(serializer_class: type[Serializer[Any]], request: Request) -> dict[str, Any]:
    """The request's query string as ``serializer_class`` validates it. Raises DRF's
    ValidationError when it is not valid (the exception handler renders it as a 400)."""
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return dict(query.validated_data)
