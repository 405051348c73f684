"""GET /api/v1/sessions and GET /api/v1/sessions/{session_id}: the caller's own history."""

from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from sessions.selectors import session_history_get, sessions_list
from sessions.serializers import (
    SessionHistoryQuerySerializer,
    SessionHistorySerializer,
    SessionListQuerySerializer,
    SessionListSerializer,
)
from skymarshal_api.apis import AuthenticatedApi
from skymarshal_api.authentication import principal_of
from skymarshal_api.observability import request_session_bind
from skymarshal_api.serializers import ErrorResponseSerializer
from skymarshal_api.validation import session_id_validate

_ERRORS = {
    400: ErrorResponseSerializer,
    401: ErrorResponseSerializer,
    403: ErrorResponseSerializer,
    429: ErrorResponseSerializer,
    503: ErrorResponseSerializer,
}


class SessionHistoryApi(AuthenticatedApi):
    @extend_schema(
        operation_id="session_history_get",
        summary="A session's history",
        description=(
            "The caller's session with its interactions, oldest first, a page at a time. "
            "404 when the session does not exist or belongs to another caller."
        ),
        parameters=[
            OpenApiParameter("session_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
            SessionHistoryQuerySerializer,
        ],
        responses={200: SessionHistorySerializer, 404: ErrorResponseSerializer, **_ERRORS},
    )
    def get(self, request: Request, session_id: str) -> Response:
        session_id_validate(session_id)
        request_session_bind(session_id)
        query = SessionHistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        history = session_history_get(
            session_id=session_id,
            principal_arn=principal_of(request).arn,
            limit=query.validated_data["limit"],
            cursor=query.validated_data.get("cursor"),
        )
        return Response(SessionHistorySerializer(asdict(history)).data)


class SessionListApi(AuthenticatedApi):
    @extend_schema(
        operation_id="sessions_list",
        summary="The caller's sessions",
        description="Most recently used first; `active=true` leaves out expired sessions.",
        parameters=[SessionListQuerySerializer],
        responses={200: SessionListSerializer, **_ERRORS},
    )
    def get(self, request: Request) -> Response:
        query = SessionListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = sessions_list(
            principal_arn=principal_of(request).arn,
            active=query.validated_data.get("active"),
            limit=query.validated_data["limit"],
            cursor=query.validated_data.get("cursor"),
        )
        return Response(SessionListSerializer(asdict(page)).data)
