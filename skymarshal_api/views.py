"""The shared base view of every endpoint that needs a caller."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from skymarshal_api.auth.authentication import principal_of
from skymarshal_api.limits.rate_limits import rate_limit_consume
from skymarshal_api.telemetry.observation import request_principal_bind


class AuthenticatedApi(APIView):
    """Base of every endpoint that needs a caller: the default authentication (SigV4 or
    API Gateway identity), then the caller's rate limit for ``rate_limit_scope``, whose
    X-RateLimit headers go on the response."""

    rate_limit_scope = "default"

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        principal = principal_of(request)
        request_principal_bind(principal.verified_arn)
        # Counted per owner: in IDENTITY_MODE=role, new session names add no allowance.
        state = rate_limit_consume(principal_arn=principal.arn, scope=self.rate_limit_scope)
        request.rate_limit_headers = state.headers()  # type: ignore[attr-defined]

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in getattr(request, "rate_limit_headers", {}).items():
            response.setdefault(name, value)
        return response


def query_validated(serializer_class: type[Serializer[Any]], request: Request) -> dict[str, Any]:
    """The request's query string as ``serializer_class`` validates it. Raises DRF's
    ValidationError when it is not valid (the exception handler renders it as a 400)."""
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return dict(query.validated_data)
