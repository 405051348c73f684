"""Input and output serializers of the session endpoints."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

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


class SessionSummarySerializer(serializers.Serializer[Any]):
    session_id = serializers.UUIDField()
    created_at = serializers.IntegerField()
    last_interaction_at = serializers.IntegerField()
    interaction_count = serializers.IntegerField()
    expired = serializers.BooleanField()


class SessionListSerializer(serializers.Serializer[Any]):
    sessions = SessionSummarySerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
