"""Input and output serializers of the session endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework import serializers

if TYPE_CHECKING:
    from sessions.selectors import SessionHistory

# A cursor the API issues is URL-safe (Django's signing: base64url, ":" and ".") and a few
# hundred characters long. The bounds keep a request line with a cursor within what the
# HTTP front ends read (gunicorn here, API Gateway deployed).
CURSOR_MAX_CHARS = 512
CURSOR_PATTERN = r"^[A-Za-z0-9_:.\-]+$"


class SessionHistoryQuerySerializer(serializers.Serializer[Any]):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=50)
    cursor = serializers.RegexField(
        CURSOR_PATTERN,
        required=False,
        max_length=CURSOR_MAX_CHARS,
        help_text="next_cursor of the previous page.",
    )


class SessionListQuerySerializer(serializers.Serializer[Any]):
    active = serializers.BooleanField(required=False, allow_null=True, default=None)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=50)
    cursor = serializers.RegexField(
        CURSOR_PATTERN,
        required=False,
        max_length=CURSOR_MAX_CHARS,
        help_text="next_cursor of the previous page.",
    )


class SessionInteractionSerializer(serializers.Serializer[Any]):
    session_id = serializers.UUIDField()
    request_id = serializers.UUIDField()
    timestamp = serializers.IntegerField(help_text="Epoch milliseconds.")
    prompt = serializers.CharField()
    response = serializers.DictField(allow_null=True)
    status = serializers.ChoiceField(
        choices=["in_progress", "success", "error", "timeout", "cancelled"]
    )
    execution_time_ms = serializers.IntegerField(allow_null=True)
    error_message = serializers.CharField(allow_null=True)


class SessionHistorySerializer(serializers.Serializer[Any]):
    session_id = serializers.UUIDField()
    created_at = serializers.IntegerField(help_text="Epoch milliseconds.")
    last_interaction_at = serializers.IntegerField(help_text="Epoch milliseconds.")
    interaction_count = serializers.IntegerField()
    expired = serializers.BooleanField(
        help_text="True when the session has been idle longer than the idle timeout; its "
        "history stays readable, but it takes no new invocations."
    )
    interactions = SessionInteractionSerializer(many=True)
    next_cursor = serializers.CharField(
        allow_null=True, help_text="Pass as `cursor` for the next page; null on the last."
    )


def session_history_representation(history: SessionHistory) -> dict[str, Any]:
    """What SessionHistorySerializer makes of a history (the same keys in the same order,
    the same values), built directly: a page of 100 interactions goes through none of
    DRF's field machinery (nor ``dataclasses.asdict``'s deep copies). The serializer
    stays the schema's; a test holds the two to the same output."""
    return {
        "session_id": history.session_id,
        "created_at": history.created_at,
        "last_interaction_at": history.last_interaction_at,
        "interaction_count": history.interaction_count,
        "expired": history.expired,
        "interactions": [
            {
                "session_id": interaction.session_id,
                "request_id": interaction.request_id,
                "timestamp": interaction.timestamp,
                "prompt": interaction.prompt,
                "response": interaction.response,
                "status": interaction.status,
                "execution_time_ms": interaction.execution_time_ms,
                "error_message": interaction.error_message,
            }
            for interaction in history.interactions
        ],
        "next_cursor": history.next_cursor,
    }


class SessionSummarySerializer(serializers.Serializer[Any]):
    session_id = serializers.UUIDField()
    created_at = serializers.IntegerField()
    last_interaction_at = serializers.IntegerField()
    interaction_count = serializers.IntegerField()
    expired = serializers.BooleanField()


class SessionListSerializer(serializers.Serializer[Any]):
    sessions = SessionSummarySerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
