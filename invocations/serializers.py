"""Input and output serializers of POST /api/v1/invoke."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from invocations.webhook_http import URL_MAX_CHARS, webhook_url_problem
from invocations.webhooks import END_EVENTS, WEBHOOK_EVENTS
from skymarshal_api.web.validation import UUID4_EXPECTED, UUID4_PATTERN, is_uuid4

EXAMPLE_SESSION_ID = "0b5a3f4e-8c1d-4f2a-9b7e-1c2d3e4f5a6b"

PROMPT_MIN_CHARS = 10
PROMPT_MAX_CHARS = 10_000
_REMOVED = re.compile(r"[<>{}]")


def prompt_sanitize(text: str) -> str:
    """Remove <, >, {, } and every control character except newline and tab, then strip
    (Property 8). Control characters here are Unicode's Cc, plus the invisible format
    characters (Cf: bidi overrides, zero-width joiners) that can hide text from a reader,
    and lone surrogates (Cs), which cannot be stored as UTF-8."""
    kept = _REMOVED.sub("", text)
    kept = "".join(
        ch
        for ch in kept
        if ch in "\n\t"
        or not unicodedata.category(ch).startswith("C")
        or unicodedata.category(ch) in ("Co", "Cn")  # private-use and unassigned stay
    )
    return kept.strip()


class StrictBooleanField(serializers.BooleanField):
    """Only JSON true and false (DRF's BooleanField also takes "yes", 1, "on", …)."""

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        self.fail("invalid", input=data)
        raise AssertionError("unreachable")  # pragma: no cover


class StrictQueryBooleanField(serializers.BooleanField):
    """A query-string boolean: exactly ``true`` or ``false``; absent means the default
    (DRF reads an absent boolean of form data as false)."""

    default_empty_html = serializers.empty

    def to_internal_value(self, data: Any) -> bool:
        if data in ("true", "false"):
            return bool(data == "true")
        self.fail("invalid", input=data)
        raise AssertionError("unreachable")  # pragma: no cover


class PromptField(serializers.CharField):
    """A JSON string, sanitized before it is judged: a NUL is removed like any control
    character rather than refused, and a number is not a prompt."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        sanitized = prompt_sanitize(data)
        if not PROMPT_MIN_CHARS <= len(sanitized) <= PROMPT_MAX_CHARS:
            raise serializers.ValidationError(
                f"prompt must be {PROMPT_MIN_CHARS} to {PROMPT_MAX_CHARS} characters after "
                f"removing <, >, {{, }} and control characters; got {len(sanitized)}."
            )
        return sanitized

    def run_validation(self, data: Any = serializers.empty) -> Any:
        # CharField's own checks (blank, NUL characters) would judge the unsanitized text.
        (is_empty, value) = self.validate_empty_values(data)
        if is_empty:
            return value
        return self.to_internal_value(value)


@extend_schema_field(
    {"type": "string", "format": "uuid", "pattern": UUID4_PATTERN, "example": EXAMPLE_SESSION_ID}
)
class SessionIdField(serializers.CharField):
    """A canonical UUID v4, kept as the text the client sent (documented as such)."""


class StrictObjectSerializer(serializers.Serializer[Any]):
    """A JSON object with only the fields declared (an unknown one is an error)."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["The request body must be a JSON object."]}
            )
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {name: [f"Unknown field; expected {', '.join(self.fields)}."] for name in unknown}
            )
        return super().to_internal_value(data)


class WebhookUrlField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        problem = webhook_url_problem(data)
        if problem is not None:
            raise serializers.ValidationError(problem)
        return data


class WebhookRequestSerializer(StrictObjectSerializer):
    url = WebhookUrlField(
        max_length=URL_MAX_CHARS,
        trim_whitespace=False,
        help_text="Where the run's events are POSTed: an https:// URL whose host resolves to "
        "public addresses only. Redirects are not followed.",
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=list(WEBHOOK_EVENTS)),
        required=False,
        default=list(END_EVENTS),
        min_length=1,
        max_length=len(WEBHOOK_EVENTS),
        help_text="The events to send (default: the run's end, whichever it is: run.succeeded, "
        "run.failed, run.timed_out, run.cancelled).",
    )

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["webhook must be a JSON object with url and events."]}
            )
        return super().to_internal_value(data)

    def validate_events(self, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError("events must not repeat an event.")
        return value


class InvokeRequestSerializer(StrictObjectSerializer):
    prompt = PromptField(
        # Documents the bounds (PromptField checks them after sanitizing).
        min_length=PROMPT_MIN_CHARS,
        max_length=PROMPT_MAX_CHARS,
        help_text=(
            "The disruption in plain language. <, >, {, } and control characters other than "
            "newline and tab are removed, then surrounding whitespace; 10 to 10,000 "
            "characters must remain."
        ),
    )
    session_id = SessionIdField(
        required=False,
        trim_whitespace=False,
        help_text="Continue this session (a canonical UUID v4); omit to start a new one. "
        "An id that does not exist yet starts a session with that id.",
    )
    streaming = StrictBooleanField(
        required=False, default=False, help_text="true: answer as Server-Sent Events."
    )
    on_conflict = serializers.ChoiceField(
        choices=["reject", "enqueue"],
        required=False,
        default="reject",
        help_text="When another run is active or queued on the session: `reject` (409 "
        "SESSION_BUSY) or `enqueue` (run after the runs ahead, in order of acceptance; "
        "refused at once with 409 SESSION_BUSY and Retry-After when it might not get its "
        "turn in time, and always for `/invoke` behind API Gateway).",
    )
    webhook = WebhookRequestSerializer(
        required=False,
        help_text="Send the run's events to this URL as signed Standard Webhooks messages "
        "(create a signing secret first: POST /api/v1/webhook-secrets).",
    )

    def validate_session_id(self, value: str) -> str:
        if not is_uuid4(value):
            raise serializers.ValidationError(f"session_id {UUID4_EXPECTED}")
        return value


class InvokeResponseSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["success"])
    request_id = serializers.UUIDField()
    session_id = serializers.UUIDField()
    execution_time_ms = serializers.IntegerField()
    assessment = serializers.DictField(help_text="The disruption as SkyMarshal understood it.")
    safety_phase = serializers.DictField(
        help_text="crew_compliance, maintenance, regulatory: status and agents' assessments."
    )
    business_phase = serializers.DictField(
        help_text="network, guest_experience, cargo, finance: status and agents' assessments."
    )
    final_decision = serializers.ChoiceField(choices=["approved", "rejected", "conditional"])
    recommendations = serializers.ListField(
        child=serializers.CharField(), help_text="Prioritized: safety first."
    )
    metadata = serializers.DictField()
    warnings = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Present when the interaction could not be saved to the session history "
        "(it was logged for replay).",
    )


class InvocationRequestSerializer(InvokeRequestSerializer):
    """The body of POST /api/v1/invocations: /invoke's, but a background run is never
    answered as a stream (GET its events instead)."""

    def validate_streaming(self, value: bool) -> bool:
        if value:
            raise serializers.ValidationError(
                "A background invocation is not streamed in its response; read "
                "GET /api/v1/invocations/{request_id}/events instead, or omit streaming."
            )
        return value


class InvocationLinksSerializer(serializers.Serializer[Any]):
    self = serializers.CharField(help_text="GET: the invocation; DELETE: cancel it.")
    events = serializers.CharField(help_text="GET: its events as Server-Sent Events.")
    wait = serializers.CharField(help_text="GET: long-poll until it ends (at most 25 s).")
    session = serializers.CharField(help_text="GET: the session's history.")
    deliveries = serializers.CharField(help_text="GET: its webhook deliveries and attempts.")


class InvocationSerializer(serializers.Serializer[Any]):
    request_id = serializers.UUIDField()
    session_id = serializers.UUIDField()
    status = serializers.ChoiceField(
        choices=["queued", "running", "succeeded", "failed", "timed_out", "cancelled"]
    )
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    queued_behind = serializers.UUIDField(
        allow_null=True, help_text="The run this one waits for (on_conflict enqueue)."
    )
    cancel_requested = serializers.BooleanField()
    result = InvokeResponseSerializer(
        allow_null=True, help_text="When succeeded: the same InvokeResponse as /invoke."
    )
    error = serializers.DictField(
        allow_null=True,
        help_text="When failed, timed_out or cancelled: the error shape (ErrorResponse).",
    )
    links = InvocationLinksSerializer()


class InvocationWaitQuerySerializer(serializers.Serializer[Any]):
    timeout = serializers.FloatField(
        required=False,
        default=25.0,
        min_value=0.0,
        max_value=25.0,
        help_text="Seconds to wait for the run to end (0 to 25, under API Gateway's 29 s).",
    )


class InvocationEventsQuerySerializer(serializers.Serializer[Any]):
    last_event_id = serializers.IntegerField(
        required=False,
        min_value=0,
        help_text="Resume after this event (the Last-Event-ID header does the same).",
    )
    follow = StrictQueryBooleanField(
        required=False,
        default=True,
        help_text="true: follow live events until the run ends; false: answer with the "
        "events stored so far (behind API Gateway, which buffers streams).",
    )
