"""The sessions table in DynamoDB (PynamoDB models); the only module that defines its shape.

Table: partition key ``session_id`` (S), sort key ``timestamp`` (N, epoch milliseconds), one
item per interaction; GSI ``user-sessions-index`` on ``user_id`` + ``timestamp`` for a
caller's sessions; TTL on ``ttl`` (epoch seconds); on-demand billing. Where the table lives
(name, region, endpoint) comes from settings and is applied by ``sessions_table_bind``.

Each session also has one item of its own at timestamp 0 (``SessionItem``: owner, created
and last-used times, interaction count), written in the same transaction as each
interaction. The same table holds the per-principal rate-limit counters (``RateLimitCounter``) under
partition keys ``ratelimit#…``, which no session id (a UUID) can take; they carry no
``user_id``, so the GSI never sees them, and TTL removes them after their window. Each run
(one per invocation) has an item under ``run#<request_id>`` (``RunItem``) with its events
after it (``RunEvent``), and each Idempotency-Key one under ``idempotency#…``
(``IdempotencyRecord``); none has a ``user_id`` either. Each run's deadline is also filed
under ``sweep#<minute>`` (``RunDeadline``) for the sweeper, whose progress is the item
``sweep#cursor`` (``SweepCursor``). A caller's webhook signing secrets are items under
``whsecret#<sha256(owner)>`` (``WebhookSecret``, encrypted), a run's webhook deliveries
under ``delivery#<request_id>`` (``WebhookDelivery``, one per event), and each delivery's
next attempt is filed under ``webhookdue#<minute>`` (``WebhookDue``) for the sweeper, whose
progress there is ``webhookdue#cursor``. One table keeps the deployment to one table and
one IAM grant.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import zlib
from functools import cache
from typing import Any

import botocore.loaders
from django.conf import settings
from pynamodb.attributes import (
    Attribute,
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.connection import TableConnection
from pynamodb.constants import BINARY, MAP, PAY_PER_REQUEST_BILLING_MODE
from pynamodb.exceptions import AttributeDeserializationError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from skymarshal_api.telemetry.capacity import dynamodb_capacity_install
from skymarshal_api.telemetry.observation import dynamodb_client_instrument

USER_SESSIONS_INDEX = "user-sessions-index"

# Settings whose change re-binds the table (tests point it at their own DynamoDB Local).
_BINDING_SETTINGS = frozenset(
    {
        "SESSION_TABLE_NAME",
        "AWS_REGION",
        "DYNAMODB_ENDPOINT_URL",
        "DYNAMODB_CONNECT_TIMEOUT_SECONDS",
        "DYNAMODB_READ_TIMEOUT_SECONDS",
        "DYNAMODB_MAX_RETRY_ATTEMPTS",
        "HEALTH_CHECK_TIMEOUT_SECONDS",
    }
)


class _TableMeta:
    """Where every model of the table lives; ``sessions_table_bind`` sets the real values."""

    table_name = "skymarshal-sessions"
    region = "us-east-1"
    billing_mode = PAY_PER_REQUEST_BILLING_MODE


class _TableModel(Model):
    """Base of the table's models: each call of their botocore client is observed (latency,
    failures, an X-Ray subsegment; ``skymarshal_api.telemetry.observation``), and its
    consumed capacity logged with DYNAMODB_CAPACITY_LOG, not asked for without
    (``skymarshal_api.telemetry.capacity``).
    Every PynamoDB operation, and every direct use of the client here, goes through
    _get_connection."""

    @classmethod
    def _get_connection(cls) -> TableConnection:
        connection = super()._get_connection()
        inner: Any = connection.connection
        if inner._client is None:
            # PynamoDB gives each model's connection a botocore session and client of its
            # own: a first request would create up to one per model (0.2-0.5 s apiece on
            # a loaded 2-core machine, most of it parsing botocore's endpoint data and
            # DynamoDB's model). The models of one table with the same settings share
            # one client, created through a loader that parses that data once.
            key = _client_key(inner)
            with _clients_lock:
                shared = _clients.get(key)
                if shared is None:
                    inner.session.register_component("data_loader", _botocore_loader())
                    shared = _clients[key] = inner.client
                inner._client = shared
        dynamodb_client_instrument(inner.client)
        dynamodb_capacity_install(inner.client)
        return connection


_clients: dict[tuple[str, ...], Any] = {}
_clients_lock = threading.Lock()


def _client_key(inner: Any) -> tuple[str, ...]:
    """What a PynamoDB connection builds its botocore client from."""
    return tuple(
        repr(getattr(inner, name))
        for name in (
            "host",
            "region",
            "_connect_timeout_seconds",
            "_read_timeout_seconds",
            "_max_retry_attempts_exception",
            "_retry_configuration",
            "_max_pool_connections",
            "_extra_headers",
            "_aws_access_key_id",
            "_aws_secret_access_key",
            "_aws_session_token",
        )
    )


@cache
def _botocore_loader() -> botocore.loaders.Loader:
    """botocore's data (endpoints, service models), parsed once for every session."""
    return botocore.loaders.create_loader()


def json_document_encode(document: dict[str, Any]) -> bytes:
    """A JSON object as JsonDocumentAttribute stores it: compact UTF-8 JSON with its keys
    sorted, zlib-compressed (RFC 1950). Raises ValueError for what JSON cannot hold (NaN,
    infinities, lone surrogates)."""
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return zlib.compress(text.encode())


def _keys_sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _keys_sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_keys_sorted(item) for item in value]
    return value


class JsonDocumentAttribute(Attribute[dict[str, Any]]):
    """A JSON object (an invocation's response) as one Binary value (json_document_encode):
    a few hundred bytes where a Map took kilobytes, so fewer write units, and read back
    with one decompression and one json.loads instead of DynamoDB and botocore walking a
    Map of nested AttributeValues. A tolerant reader: items written before hold the object
    as a Map, read back as before, with its keys sorted (DynamoDB returns a Map's keys in
    an order of its own), so that both forms read the same."""

    attr_type = BINARY

    def serialize(self, value: Any) -> bytes:
        return json_document_encode(value)

    def get_value(self, value: dict[str, Any]) -> Any:
        if BINARY in value:
            return value[BINARY]
        if MAP in value:
            return value  # written as a Map before this attribute
        raise AttributeDeserializationError(self.attr_name, self.attr_type)

    def deserialize(self, value: Any) -> dict[str, Any]:
        if isinstance(value, bytes):
            document: dict[str, Any] = json.loads(zlib.decompress(value))
            return document
        return dict(_keys_sorted(MapAttribute[str, Any]().deserialize(value[MAP])))


class UserSessionsIndex(GlobalSecondaryIndex["SessionInteraction"]):
    class Meta:
        index_name = USER_SESSIONS_INDEX
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    timestamp = NumberAttribute(range_key=True)


class SessionInteraction(_TableModel):
    """One invocation within a session."""

    class Meta(_TableMeta):
        pass

    session_id = UnicodeAttribute(hash_key=True)
    timestamp = NumberAttribute(range_key=True)
    request_id = UnicodeAttribute()
    prompt = UnicodeAttribute()
    response = JsonDocumentAttribute(null=True)
    status = UnicodeAttribute()
    execution_time_ms = NumberAttribute(null=True)
    error_message = UnicodeAttribute(null=True)
    user_id = UnicodeAttribute()
    ttl = TTLAttribute(null=True)

    user_sessions_index = UserSessionsIndex()


# The session's own item sits at timestamp 0, before every interaction (timestamps are
# epoch milliseconds). It has no user_id, so the GSI lists interactions only.
SESSION_ITEM_TIMESTAMP = 0


class SessionItem(_TableModel):
    """A session: who owns it, when it started and was last used, how many interactions."""

    class Meta(_TableMeta):
        pass

    session_id = UnicodeAttribute(hash_key=True)
    timestamp = NumberAttribute(range_key=True, default=SESSION_ITEM_TIMESTAMP)
    owner = UnicodeAttribute()
    created_at = NumberAttribute()
    last_interaction_at = NumberAttribute()
    interaction_count = NumberAttribute(default=0)
    ttl = TTLAttribute(null=True)
    # The run that holds the session (one at a time), until it ends or its deadline passes;
    # and the last run queued behind it (``on_conflict: enqueue``).
    active_run = UnicodeAttribute(null=True)
    active_until = NumberAttribute(null=True)
    queue_tail = UnicodeAttribute(null=True)


RATE_LIMIT_KEY_PREFIX = "ratelimit#"


class RateLimitCounter(_TableModel):
    """Requests a principal made in one fixed window; ``timestamp`` is the window's start."""

    class Meta(_TableMeta):
        pass

    session_id = UnicodeAttribute(hash_key=True)
    timestamp = NumberAttribute(range_key=True)
    hits = NumberAttribute(attr_name="count", default=0)
    ttl = TTLAttribute(null=True)


RUN_KEY_PREFIX = "run#"
RUN_ITEM_TIMESTAMP = 0


class RunItem(_TableModel):
    """One invocation's run, by request id: state, timings and outcome. Partition key
    ``run#<request_id>``; the item sits at timestamp 0 and the run's events after it."""

    class Meta(_TableMeta):
        pass

    session_id = UnicodeAttribute(hash_key=True)  # run#<request_id>
    timestamp = NumberAttribute(range_key=True, default=RUN_ITEM_TIMESTAMP)
    request_id = UnicodeAttribute()
    run_session_id = UnicodeAttribute()
    interaction_timestamp = NumberAttribute()
    owner = UnicodeAttribute()
    kind = UnicodeAttribute()  # invoke (synchronous) | invocation (background)
    status = UnicodeAttribute()  # queued | running | succeeded | failed | timed_out | cancelled
    prompt = UnicodeAttribute()
    created_at = NumberAttribute()
    started_at = NumberAttribute(null=True)
    finished_at = NumberAttribute(null=True)
    deadline_at = NumberAttribute()
    # The run it was queued behind, and how long it lasts once it has its turn (its
    # deadline plus grace, in ms): how long it keeps the runs queued after it waiting.
    after = UnicodeAttribute(null=True)
    run_ms = NumberAttribute(null=True)
    cancel_requested = BooleanAttribute(null=True)
    response = JsonDocumentAttribute(null=True)
    error = MapAttribute[str, Any](null=True)
    http_status = NumberAttribute(null=True)
    # On Lambda: until when a worker invocation holds the run (its timeout), and the
    # failures of the worker invocations that held it, with the last one's reason.
    worker_until = NumberAttribute(null=True)
    worker_failures = NumberAttribute(null=True)
    worker_failure = UnicodeAttribute(null=True)
    # The caller's webhook for the run: {"url": ..., "events": [...]}.
    webhook = MapAttribute[str, Any](null=True)
    # A background run's trace, as the accepting request left it for the worker:
    # {"traceparent": ..., "tracestate": ..., "baggage": ...}; absent on older items.
    trace = MapAttribute[str, Any](null=True)
    ttl = TTLAttribute(null=True)


class RunEvent(_TableModel):
    """One event of a background run, numbered from 1 (the SSE id) in arrival order."""

    class Meta(_TableMeta):
        pass

    session_id = UnicodeAttribute(hash_key=True)  # run#<request_id>
    timestamp = NumberAttribute(range_key=True)  # the event's number
    event = UnicodeAttribute()
    data = UnicodeAttribute()  # compact JSON, exactly as streamed
    ttl = TTLAttribute(null=True)


SWEEP_KEY_PREFIX = "sweep#"
SWEEP_CURSOR_KEY = "sweep#cursor"
SWEEP_BUCKET_MS = 60_000


class RunDeadline(_TableModel):
    """A run's deadline, filed under the minute it falls in: the sweeper reads the minutes
    that have passed (one Query each) to find runs that may be lost, without a Scan of the
    table. Partition key ``sweep#<epoch minute of the deadline>``; sort key a number drawn
    from the request id. Written with the run; deleted by the sweeper once the run has
    ended (TTL removes any left behind)."""

    class Meta(_TableMeta):
        pass

    session_id = UnicodeAttribute(hash_key=True)  # sweep#<minute>
    timestamp = NumberAttribute(range_key=True)
    request_id = UnicodeAttribute()
    deadline_at = NumberAttribute()
    ttl = TTLAttribute(null=True)


def run_deadline_key(request_id: str, deadline_at: int) -> tuple[str, int]:
    """The RunDeadline key of a run: its deadline's minute, and 120 bits of the SHA-256 of
    its request id (a Number holds 38 digits)."""
    digest = hashlib.sha256(request_id.encode()).hexdigest()
    return f"{SWEEP_KEY_PREFIX}{deadline_at // SWEEP_BUCKET_MS}", int(digest[:30], 16)


class SweepCursor(_TableModel):
    """The first minute of deadlines the sweeper has not finished (``sweep#cursor``)."""

    class Meta(_TableMeta):
        pass

    session_id = UnicodeAttribute(hash_key=True)
    timestamp = NumberAttribute(range_key=True, default=0)
    minute = NumberAttribute()


IDEMPOTENCY_KEY_PREFIX = "idempotency#"


class IdempotencyRecord(_TableModel):
    """An Idempotency-Key a principal used: which request it started and a hash of the
    request's body. Partition key ``idempotency#<sha256(principal, key)>``."""

    class Meta(_TableMeta):
        pass

    session_id = UnicodeAttribute(hash_key=True)
    timestamp = NumberAttribute(range_key=True, default=0)
    request_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    request_hash = UnicodeAttribute()
    expires_at = NumberAttribute()  # epoch ms; TTL deletes the item some time after
    ttl = TTLAttribute(null=True)


WEBHOOK_SECRET_KEY_PREFIX = "whsecret#"  # noqa: S105 - a key prefix


class WebhookSecret(_TableModel):
    """One of a caller's webhook signing secrets. Partition key
    ``whsecret#<sha256(owner)>``; sort key its creation time (epoch ms). The secret itself
    is stored encrypted (``secret_token``); a secret that was rotated out has
    ``expires_at``, and TTL removes it some time after."""

    class Meta(_TableMeta):
        pass

    session_id = UnicodeAttribute(hash_key=True)
    timestamp = NumberAttribute(range_key=True)
    secret_id = UnicodeAttribute()
    owner = UnicodeAttribute()
    secret_token = UnicodeAttribute()
    created_at = NumberAttribute()
    expires_at = NumberAttribute(null=True)
    ttl = TTLAttribute(null=True)


DELIVERY_KEY_PREFIX = "delivery#"


class WebhookDelivery(_TableModel):
    """One webhook message of a run (one per event it was sent for) and its attempts.
    Partition key ``delivery#<request_id>``; sort key the event's slot (1: run.started,
    2: the run's end). ``delivery_id`` is the Standard Webhooks ``webhook-id``, the same on
    every attempt."""

    class Meta(_TableMeta):
        pass

    session_id = UnicodeAttribute(hash_key=True)
    timestamp = NumberAttribute(range_key=True)
    delivery_id = UnicodeAttribute()
    request_id = UnicodeAttribute()
    owner = UnicodeAttribute()
    event = UnicodeAttribute()
    url = UnicodeAttribute()
    status = UnicodeAttribute()  # pending | delivered | failed | gone
    created_at = NumberAttribute()
    # When the event happened (the payload's timestamp).
    occurred_at = NumberAttribute()
    # The next attempt (pending only), how many scheduled attempts were made, whether the
    # next attempt is a redelivery (one attempt, no retries), and until when a sender
    # holds the delivery.
    next_attempt_at = NumberAttribute(null=True)
    scheduled_attempts = NumberAttribute(default=0)
    redelivery = BooleanAttribute(null=True)
    claimed_until = NumberAttribute(null=True)
    attempts = ListAttribute[MapAttribute[str, Any]](of=MapAttribute, null=True)
    ttl = TTLAttribute(null=True)


WEBHOOK_DUE_KEY_PREFIX = "webhookdue#"
WEBHOOK_DUE_CURSOR_KEY = "webhookdue#cursor"


class WebhookDue(_TableModel):
    """A delivery's next attempt, filed under the minute it is due in (like RunDeadline):
    the sweeper reads the minutes that have passed and sends what is due. Partition key
    ``webhookdue#<epoch minute>``; sort key a number drawn from the delivery and the time."""

    class Meta(_TableMeta):
        pass

    session_id = UnicodeAttribute(hash_key=True)
    timestamp = NumberAttribute(range_key=True)
    request_id = UnicodeAttribute()
    slot = NumberAttribute()
    due_at = NumberAttribute()
    ttl = TTLAttribute(null=True)


def webhook_due_key(delivery_id: str, due_at: int) -> tuple[str, int]:
    """The WebhookDue key of a delivery's attempt due at ``due_at``."""
    digest = hashlib.sha256(f"{delivery_id}\n{due_at}".encode()).hexdigest()
    return f"{WEBHOOK_DUE_KEY_PREFIX}{due_at // SWEEP_BUCKET_MS}", int(digest[:30], 16)


class SessionsTableProbe(_TableModel):
    """The table as the health check sees it: the same binding with the health check's
    timeouts and no retry, so a DynamoDB that accepts connections and never answers costs
    one HEALTH_CHECK_TIMEOUT_SECONDS, not the data path's timeouts times its retries."""

    class Meta(_TableMeta):
        pass

    session_id = UnicodeAttribute(hash_key=True)


TABLE_MODELS: tuple[type[Model], ...] = (
    SessionInteraction,
    SessionItem,
    RateLimitCounter,
    RunItem,
    RunEvent,
    IdempotencyRecord,
    RunDeadline,
    SweepCursor,
    WebhookSecret,
    WebhookDelivery,
    WebhookDue,
)


def sessions_table_bind(
    *, table_name: str | None = None, endpoint_url: str | None = None, region: str | None = None
) -> None:
    """Point the models at the table that settings (or the arguments) name.

    PynamoDB caches one connection per model; dropping it makes the next call use the new
    binding. With an endpoint (DynamoDB Local) and no AWS credentials in the environment,
    placeholder credentials are used: DynamoDB Local accepts any, and the local stack must
    run without an AWS account.
    """
    bound: tuple[type[Model], ...] = (*TABLE_MODELS, SessionsTableProbe)
    with _clients_lock:
        _clients.clear()
    for model in bound:
        meta: Any = model.Meta
        meta.table_name = table_name or settings.SESSION_TABLE_NAME
        meta.region = region or settings.AWS_REGION
        meta.host = endpoint_url or settings.DYNAMODB_ENDPOINT_URL
        meta.connect_timeout_seconds = settings.DYNAMODB_CONNECT_TIMEOUT_SECONDS
        meta.read_timeout_seconds = settings.DYNAMODB_READ_TIMEOUT_SECONDS
        meta.max_retry_attempts = settings.DYNAMODB_MAX_RETRY_ATTEMPTS
        if meta.host and not settings.PRODUCTION and not _aws_credentials_configured():
            meta.aws_access_key_id = "local"
            meta.aws_secret_access_key = "local"  # noqa: S105 - DynamoDB Local ignores it
        model._connection = None
    probe: Any = SessionsTableProbe.Meta
    probe.connect_timeout_seconds = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    probe.read_timeout_seconds = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    probe.max_retry_attempts = 0
    SessionsTableProbe._connection = None


def sessions_connections_reset() -> None:
    """Drop every model's connection: its botocore session, client, credentials and
    connection pool. The next operation opens a new one with the same binding (after a
    SnapStart restore, skymarshal_api/snapstart.py)."""
    models: tuple[type[Model], ...] = (*TABLE_MODELS, SessionsTableProbe)
    with _clients_lock:
        _clients.clear()
    for model in models:
        model._connection = None


def sessions_connections_warm(*, probe: bool = True) -> None:
    """Open the models' connection and create its botocore client, which loads
    DynamoDB's service model and endpoints; no request is sent. ``probe``: the health
    check's own connection too."""
    models: tuple[type[Model], ...] = (*TABLE_MODELS, SessionsTableProbe) if probe else TABLE_MODELS
    for model in models:
        model._get_connection().connection.client  # noqa: B018 - created on first access


def sessions_table_rebind_on_change(*, setting: str, **_: Any) -> None:
    if setting in _BINDING_SETTINGS:
        sessions_table_bind()


def _aws_credentials_configured() -> bool:
    return bool(os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"))


# DynamoDB's item size limit is 400 KB, attribute names and values together
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html);
# a runtime message may be up to AGENTCORE_MAX_MESSAGE_BYTES (1 MiB).
EVENT_DATA_MAX_BYTES = 380_000
# What a truncated event keeps of its data: JSON escaping may double it.
_TRUNCATED_PREFIX_BYTES = EVENT_DATA_MAX_BYTES // 2 - 1024
TRUNCATED_NOTE = (
    "The event was larger than a DynamoDB item can hold; only its beginning was stored "
    "(a live stream received it whole)."
)


def event_data_storable(data: str, *, keep_prefix: bool = True) -> str:
    """``data`` (an event's JSON), or, when too large for an item (or not ``keep_prefix``),
    a JSON object with a note, its size and (``keep_prefix``) the beginning of its text."""
    size = len(data.encode())
    if size <= EVENT_DATA_MAX_BYTES and keep_prefix:
        return data
    truncated: dict[str, object] = {
        "truncated": True,
        "original_bytes": size,
        "note": TRUNCATED_NOTE,
    }
    if keep_prefix:
        truncated["data_prefix"] = data.encode()[:_TRUNCATED_PREFIX_BYTES].decode(errors="ignore")
    return json.dumps(truncated, separators=(",", ":"), ensure_ascii=False)
