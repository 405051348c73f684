"""GET /api/v1/sessions and GET /api/v1/sessions/{session_id}: the caller's own history."""

from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework.request import Request
from rest_framework.response import Response

from sessions.selectors import session_history_get, sessions_list
from sessions.serializers import (
    SessionHistoryQuerySerializer,
    SessionHistorySerializer,
    SessionListQuerySerializer,
    SessionListSerializer,
    session_history_representation,
)
from skymarshal_api.auth.authentication import principal_of
from skymarshal_api.telemetry.observation import request_session_bind
from skymarshal_api.views import AuthenticatedApi, query_validated
from skymarshal_api.web.errors import (
    InvalidCursor,
    InvalidRequest,
    SessionNotFound,
    StorageUnavailable,
)
from skymarshal_api.web.schema import (
    AUTHENTICATED_ERRORS,
    EXAMPLE_PROMPT,
    EXAMPLE_RESPONSE,
    INTERNAL_ERROR_RESPONSE,
    error_response,
)
from skymarshal_api.web.schema_annotations import extend_schema
from skymarshal_api.web.validation import UUID4_PATTERN, session_id_validate

# The session of the invoke example, as its owner reads it back.
_EXAMPLE_AT = 1795428000000
_EXAMPLE_SESSION = {
    "session_id": EXAMPLE_RESPONSE["session_id"],
    "created_at": _EXAMPLE_AT,
    "last_interaction_at": _EXAMPLE_AT,
    "interaction_count": 1,
    "expired": False,
}
_EXAMPLE_HISTORY = {
    **_EXAMPLE_SESSION,
    "interactions": [
        {
            "session_id": EXAMPLE_RESPONSE["session_id"],
            "request_id": EXAMPLE_RESPONSE["request_id"],
            "timestamp": _EXAMPLE_AT,
            "prompt": EXAMPLE_PROMPT,
            "response": {
                key: value
                for key, value in EXAMPLE_RESPONSE.items()
                if key not in ("request_id", "session_id", "warnings")
            },
            "status": "success",
            "execution_time_ms": EXAMPLE_RESPONSE["execution_time_ms"],
            "error_message": None,
        }
    ],
    "next_cursor": None,
}
_INVALID_LIMIT = InvalidRequest(
    "The request is not valid; see details for each field.",
    details={"fields": {"limit": ["Ensure this value is less than or equal to 100."]}},
)
_ERRORS = {
    **AUTHENTICATED_ERRORS,
    503: error_response(
        "STORAGE_UNAVAILABLE: DynamoDB did not answer; retry after Retry-After.",
        StorageUnavailable("Session storage could not list the sessions; retry after Retry-After."),
    ),
    **INTERNAL_ERROR_RESPONSE,
}


class SessionHistoryApi(AuthenticatedApi):
    rate_limit_beside_reads = True  # a read that answers at once

    @extend_schema(
        operation_id="session_history_get",
        summary="A session's history",
        description=(
            "The caller's session with its interactions, oldest first, a page at a time. "
            "404 when the session does not exist or belongs to another caller."
        ),
        parameters=[
            OpenApiParameter(
                "session_id",
                {"type": "string", "format": "uuid", "pattern": UUID4_PATTERN},
                OpenApiParameter.PATH,
                description="A canonical UUID v4: the session_id of an invoke response.",
                examples=[
                    OpenApiExample("The invoke example's session", EXAMPLE_RESPONSE["session_id"])
                ],
            ),
            SessionHistoryQuerySerializer,
        ],
        responses={
            200: OpenApiResponse(
                SessionHistorySerializer,
                description="The session and a page of its interactions.",
                examples=[OpenApiExample("One interaction", value=_EXAMPLE_HISTORY)],
            ),
            400: error_response(
                "INVALID_REQUEST (session_id is not a canonical UUID v4, or a bad limit) or "
                "INVALID_CURSOR.",
                InvalidRequest(
                    "session_id must be a canonical UUID version 4 (lower-case, e.g. "
                    "0b5a3f4e-8c1d-4f2a-9b7e-1c2d3e4f5a6b).",
                    details={"fields": {"session_id": ["Not a canonical UUID version 4."]}},
                ),
                InvalidCursor(),
            ),
            404: error_response(
                "SESSION_NOT_FOUND: no such session, or it belongs to another caller.",
                SessionNotFound(),
            ),
            **_ERRORS,
        },
    )
    def get(self, request: Request, session_id: str) -> Response:
        session_id_validate(session_id)
        request_session_bind(session_id)
        query = query_validated(SessionHistoryQuerySerializer, request)
        history = session_history_get(
            session_id=session_id,
            principal_arn=principal_of(request).arn,
            limit=query["limit"],
            cursor=query.get("cursor"),
        )
        return Response(session_history_representation(history))


class SessionListApi(AuthenticatedApi):
    rate_limit_beside_reads = True  # a read that answers at once

    @extend_schema(
        operation_id="sessions_list",
        summary="The caller's sessions",
        description="Most recently used first; `active=true` leaves out expired sessions.",
        parameters=[SessionListQuerySerializer],
        responses={
            200: OpenApiResponse(
                SessionListSerializer,
                description="A page of the caller's sessions.",
                examples=[
                    OpenApiExample(
                        "One session", value={"sessions": [_EXAMPLE_SESSION], "next_cursor": None}
                    )
                ],
            ),
            400: error_response(
                "INVALID_REQUEST (a bad active or limit) or INVALID_CURSOR.",
                _INVALID_LIMIT,
                InvalidCursor(),
            ),
            **_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        query = query_validated(SessionListQuerySerializer, request)
        page = sessions_list(
            principal_arn=principal_of(request).arn,
            active=query.get("active"),
            limit=query["limit"],
            cursor=query.get("cursor"),
        )
        return Response(SessionListSerializer(asdict(page)).data)
