"""Django settings for SkyMarshal API, read from the environment.

SKYMARSHAL_ENV selects the defaults: ``local`` (a developer's machine, the local stack),
``test`` (the test suite) and ``production`` (Lambda behind API Gateway), which refuses to
start without its required values. README.md lists every variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from skymarshal_api.auth.identity import IDENTITY_MODES, trusted_session_roles_parse
from skymarshal_api.environment import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_json_object,
    env_list,
    env_required,
    env_str,
)
from skymarshal_api.telemetry.tracing import daemon_address

BASE_DIR = Path(__file__).resolve().parent.parent

# Secure by default: without an explicit SKYMARSHAL_ENV=local (or test), on Lambda or
# anywhere else, the app is production and refuses every local default (the development
# key pair, the development secret key, AUTH_MODE=none, DEBUG). `make run` and the tests
# set local/test themselves.
SKYMARSHAL_ENV = env_choice("SKYMARSHAL_ENV", ("local", "test", "production"), "production")
PRODUCTION = SKYMARSHAL_ENV == "production"
if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and not PRODUCTION:
    # The local defaults accept the development key published in README.md.
    raise ImproperlyConfigured(
        f"SKYMARSHAL_ENV={SKYMARSHAL_ENV} on AWS Lambda: set SKYMARSHAL_ENV=production"
    )

# Only the local stack and the tests may fall back to a built-in key; production refuses.
_DEV_SECRET_KEY = "skymarshal-local-development-only-key-not-for-production-use"  # noqa: S105
SECRET_KEY = (
    env_required("DJANGO_SECRET_KEY", env_str("DJANGO_SECRET_KEY"), environment=SKYMARSHAL_ENV)
    if PRODUCTION
    else env_str("DJANGO_SECRET_KEY", _DEV_SECRET_KEY)
)
if PRODUCTION and SECRET_KEY == _DEV_SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is the development key published in this repository; production "
        "needs a secret of its own (SKYMARSHAL_ENV=local for a developer's machine)"
    )
if PRODUCTION and env_bool("DJANGO_DEBUG", False):
    raise ImproperlyConfigured("DJANGO_DEBUG is for local use only; production refuses it")
DEBUG = False if PRODUCTION else env_bool("DJANGO_DEBUG", False)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", () if PRODUCTION else ("127.0.0.1", "localhost"))
if PRODUCTION and not ALLOWED_HOSTS:
    env_required("ALLOWED_HOSTS", None, environment=SKYMARSHAL_ENV)

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "skymarshal_api.apps.SkyMarshalApiConfig",
    "sessions.apps.SessionsConfig",
    "invocations.apps.InvocationsConfig",
    "health.apps.HealthConfig",
]

MIDDLEWARE = [
    "skymarshal_api.telemetry.observation.ObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "skymarshal_api.web.middleware.ApiSecurityHeadersMiddleware",
    "skymarshal_api.web.middleware.HeaderGrammarMiddleware",
    "skymarshal_api.web.middleware.BodyLimitMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
if not PRODUCTION:
    # Staff logins to the browsable API (production has no database to log in against).
    MIDDLEWARE[7:7] = ["django.contrib.sessions.middleware.SessionMiddleware"]
    MIDDLEWARE[-1:-1] = [
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ]

ROOT_URLCONF = "skymarshal_api.urls"
WSGI_APPLICATION = "skymarshal_api.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# The relational database only backs staff logins to the browsable API on a developer's
# machine. Production keeps no relational state (all state is in DynamoDB), so it has none.
if PRODUCTION:
    DATABASES: dict[str, dict[str, object]] = {}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("LOCAL_DATABASE_PATH", str(BASE_DIR / ".local" / "db.sqlite3")),
        }
    }

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
# WhiteNoise serves the installed apps' static files (Swagger UI, Redoc, the browsable API)
# straight from the packages: there is no collectstatic step locally or in the Lambda
# package (so no STATIC_ROOT), and the docs need no CDN.
WHITENOISE_USE_FINDERS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    # The browsable API answers requests that ask for HTML, in production too: there the
    # caller is the IAM principal that signed the request (staff reach it through
    # `skymarshal proxy`, which signs for the browser); it needs no login and no database.
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["skymarshal_api.web.parsers.SafeJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "skymarshal_api.web.negotiation.JsonFallbackNegotiation",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "skymarshal_api.auth.authentication.ApiGatewayIamAuthentication",
        "skymarshal_api.auth.authentication.SigV4Authentication",
        "skymarshal_api.auth.authentication.StaffSessionAuthentication",
        "skymarshal_api.auth.authentication.LocalNoAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "skymarshal_api.web.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "SkyMarshal API",
    "DESCRIPTION": "Airline disruption assessments from the SkyMarshal multi-agent system.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The schema and the docs are open to everyone (Property 11).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "skymarshal_api.web.schema.gateway_errors_documented",
        "skymarshal_api.web.schema.header_errors_documented",
        "skymarshal_api.web.schema.trace_headers_documented",
        "skymarshal_api.web.schema.responses_in_status_order",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ErrorStatusEnum": ["error"],
        "HealthStatusEnum": ["healthy", "degraded", "unhealthy"],
        "InvocationStatusEnum": [
            "queued",
            "running",
            "succeeded",
            "failed",
            "timed_out",
            "cancelled",
        ],
        "WebhookEventEnum": [
            "run.started",
            "run.succeeded",
            "run.failed",
            "run.timed_out",
            "run.cancelled",
        ],
    },
}

# --- SkyMarshal --------------------------------------------------------------------------

API_VERSION = "0.1.0"
LOG_LEVEL = env_choice("LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO")

AWS_REGION = env_str("AWS_REGION", env_str("AWS_DEFAULT_REGION", "us-east-1")) or "us-east-1"

# DynamoDB: the sessions table. An endpoint URL points the same code at DynamoDB Local.
SESSION_TABLE_NAME = env_str("SESSION_TABLE_NAME", None if PRODUCTION else "skymarshal-sessions")
if PRODUCTION:
    SESSION_TABLE_NAME = env_required(
        "SESSION_TABLE_NAME", SESSION_TABLE_NAME, environment="production"
    )
# The value ``aws`` means DynamoDB itself in AWS_REGION (the default in production).
DYNAMODB_ENDPOINT_URL = env_str(
    "DYNAMODB_ENDPOINT_URL", None if PRODUCTION else "http://127.0.0.1:8001"
)
if DYNAMODB_ENDPOINT_URL is not None and DYNAMODB_ENDPOINT_URL.lower() == "aws":
    DYNAMODB_ENDPOINT_URL = None
# Interactions are kept this long (DynamoDB TTL); a session idle this long is expired.
SESSION_TTL_DAYS = env_int("SESSION_TTL_DAYS", 30, minimum=1, maximum=3650)
SESSION_IDLE_MINUTES = env_int("SESSION_IDLE_MINUTES", 30, minimum=1)
DYNAMODB_CONNECT_TIMEOUT_SECONDS = env_float("DYNAMODB_CONNECT_TIMEOUT_SECONDS", 2.0, minimum=0.1)
DYNAMODB_READ_TIMEOUT_SECONDS = env_float("DYNAMODB_READ_TIMEOUT_SECONDS", 5.0, minimum=0.1)
DYNAMODB_MAX_RETRY_ATTEMPTS = env_int("DYNAMODB_MAX_RETRY_ATTEMPTS", 3, minimum=0, maximum=10)
# Each DynamoDB call asks for its consumed capacity (ReturnConsumedCapacity=TOTAL) and logs
# it as one ``dynamodb capacity`` line (skymarshal_api.telemetry.capacity): for measuring what a run
# costs (``make bench``), off by default.
DYNAMODB_CAPACITY_LOG = env_bool("DYNAMODB_CAPACITY_LOG", False)

# AgentCore runtime: ``aws`` signs a WebSocket to the runtime ARN; ``local`` connects to
# the local SkyMarshal runtime at AGENTCORE_WS_URL.
AGENTCORE_MODE = env_choice("AGENTCORE_MODE", ("local", "aws"), "aws" if PRODUCTION else "local")
AGENTCORE_RUNTIME_ARN = env_str("AGENTCORE_RUNTIME_ARN")
if PRODUCTION or AGENTCORE_MODE == "aws":
    AGENTCORE_RUNTIME_ARN = env_required(
        "AGENTCORE_RUNTIME_ARN", AGENTCORE_RUNTIME_ARN, environment=SKYMARSHAL_ENV
    )
AGENTCORE_ENDPOINT_NAME = env_str("AGENTCORE_ENDPOINT_NAME")
AGENTCORE_WS_URL = env_str("AGENTCORE_WS_URL", "ws://127.0.0.1:8080/ws") or ""
# The whole run may take this long (the Lambda allows 300 s; API Gateway's synchronous
# limit is 29 s, see README).
AGENTCORE_DEADLINE_SECONDS = env_float("AGENTCORE_DEADLINE_SECONDS", 300.0, minimum=1.0)
AGENTCORE_OPEN_TIMEOUT_SECONDS = env_float("AGENTCORE_OPEN_TIMEOUT_SECONDS", 10.0, minimum=0.1)
AGENTCORE_CLOSE_TIMEOUT_SECONDS = env_float("AGENTCORE_CLOSE_TIMEOUT_SECONDS", 5.0, minimum=0.1)
AGENTCORE_MAX_MESSAGE_BYTES = env_int("AGENTCORE_MAX_MESSAGE_BYTES", 1024 * 1024, minimum=1024)
SSE_HEARTBEAT_SECONDS = env_float("SSE_HEARTBEAT_SECONDS", 15.0, minimum=0.1)
# ``buffered``: something in front of the app (API Gateway's Lambda proxy integration, under
# Zappa) holds the whole response until it ends, so a streamed answer gets no heartbeat
# comments: none would reach the client before the end. ``streaming``: responses reach the
# client as they are written (gunicorn, the local stack).
RESPONSE_MODE = env_choice("RESPONSE_MODE", ("streaming", "buffered"), "streaming")
# Connection failures are retried after these delays (seconds), and nothing else is.
AGENTCORE_RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0)

# Runs (POST /api/v1/invocations and every /invoke): where background runs execute
# ("threads": a bounded pool in this process; "lambda": a Zappa asynchronous task, one
# asynchronous invocation of the worker function RUN_WORKER_FUNCTION per run, so that runs
# never take the API function's capacity), how many at once per process, how long a run
# may wait in a session's queue (on Lambda also the worker's maximum event age), and the
# grace after a run's deadline before an unfinished run is declared lost. Events are
# polled from the table at RUN_POLL_SECONDS; a running run checks for cancellation at
# RUN_CANCEL_CHECK_SECONDS.
RUN_EXECUTOR = env_choice(
    "RUN_EXECUTOR",
    ("threads", "lambda"),
    "lambda" if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") else "threads",
)
RUN_WORKER_FUNCTION = env_str("RUN_WORKER_FUNCTION")
if RUN_EXECUTOR == "lambda" and not RUN_WORKER_FUNCTION:
    raise ImproperlyConfigured(
        "RUN_WORKER_FUNCTION must name the worker function when RUN_EXECUTOR=lambda "
        "(zappa_settings.json sets it per stage)"
    )
# Deliveries of one run to a worker before it is ended as WORKER_FAILED: Lambda's first
# attempt plus its MaximumRetryAttempts (2, the most Lambda allows) for asynchronous events.
RUN_MAX_ATTEMPTS = env_int("RUN_MAX_ATTEMPTS", 3, minimum=1, maximum=3)
RUN_WORKERS = env_int("RUN_WORKERS", 8, minimum=1, maximum=256)
RUN_QUEUE_TIMEOUT_SECONDS = env_float("RUN_QUEUE_TIMEOUT_SECONDS", 900.0, minimum=1.0)
# The deadline of a background run where it runs: on the API function, the worker's
# AGENTCORE_DEADLINE_SECONDS (zappa_settings.json), so that the queue a run joins is
# measured with the deadlines its runs will really have.
RUN_BACKGROUND_DEADLINE_SECONDS = env_float(
    "RUN_BACKGROUND_DEADLINE_SECONDS", AGENTCORE_DEADLINE_SECONDS, minimum=1.0
)
RUN_GRACE_SECONDS = env_float("RUN_GRACE_SECONDS", 30.0, minimum=0.0)
RUN_POLL_SECONDS = env_float("RUN_POLL_SECONDS", 0.25, minimum=0.01, maximum=10.0)
RUN_CANCEL_CHECK_SECONDS = env_float("RUN_CANCEL_CHECK_SECONDS", 0.5, minimum=0.05, maximum=10.0)
# On Lambda, a background run's task has the function's timeout; a task still waiting for
# its turn hands over to a fresh invocation while the rest still fits the run's deadline.
RUN_TASK_TIMEOUT_SECONDS = env_float("RUN_TASK_TIMEOUT_SECONDS", 300.0, minimum=1.0)
# Behind API Gateway (RESPONSE_MODE=buffered), the longest a request holds the function,
# under the gateway's 29 s integration timeout: `events?follow=true` and a synchronous run
# (its turn on the session included) end by then with what they have. (`wait` takes at
# most 25 s everywhere.)
REQUEST_HOLD_SECONDS = env_float("REQUEST_HOLD_SECONDS", 25.0, minimum=1.0, maximum=28.0)
IDEMPOTENCY_TTL_HOURS = env_int("IDEMPOTENCY_TTL_HOURS", 24, minimum=1, maximum=24 * 7)

# Run webhooks (invocations/webhooks.py). A delivery is tried at once, then after each
# delay of WEBHOOK_RETRY_SCHEDULE_SECONDS (with jitter) until a 2xx or a 410: by default
# after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 24 h (about 42 hours in all). Each attempt
# gives up after WEBHOOK_TIMEOUT_SECONDS.
_webhook_schedule = env_list(
    "WEBHOOK_RETRY_SCHEDULE_SECONDS", ("5", "300", "1800", "7200", "18000", "36000", "86400")
)
try:
    WEBHOOK_RETRY_SCHEDULE_SECONDS: tuple[float, ...] = tuple(
        float(value) for value in _webhook_schedule
    )
except ValueError:
    WEBHOOK_RETRY_SCHEDULE_SECONDS = ()
if not WEBHOOK_RETRY_SCHEDULE_SECONDS or any(
    not 0 <= delay <= 7 * 86400 for delay in WEBHOOK_RETRY_SCHEDULE_SECONDS
):
    raise ImproperlyConfigured(
        "WEBHOOK_RETRY_SCHEDULE_SECONDS: a comma-separated list of 1 or more delays, each "
        "from 0 to 604800 seconds"
    )
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 10.0, minimum=0.1, maximum=10.0)
# A rotated signing secret keeps signing deliveries this long after its successor exists.
WEBHOOK_SECRET_OVERLAP_HOURS = 24
# Local only: webhooks may be sent over plain http to the loopback address
# (http://127.0.0.1:PORT/...) for development and tests. Production refuses it: there a
# webhook URL is https, and no delivery connects to a private, loopback, link-local,
# multicast or reserved address.
WEBHOOK_ALLOW_LOCAL_HTTP = env_bool("WEBHOOK_ALLOW_LOCAL_HTTP", False)
if PRODUCTION and WEBHOOK_ALLOW_LOCAL_HTTP:
    raise ImproperlyConfigured(
        "WEBHOOK_ALLOW_LOCAL_HTTP is for local use only; production refuses it"
    )

# Health: how long a check result is reused, and how long one check may take.
HEALTH_CACHE_SECONDS = env_float("HEALTH_CACHE_SECONDS", 5.0, minimum=0.0, maximum=300.0)
HEALTH_CHECK_TIMEOUT_SECONDS = env_float("HEALTH_CHECK_TIMEOUT_SECONDS", 2.0, minimum=0.1)
# A check slower than this reports ``degraded`` although it succeeded.
HEALTH_DEGRADED_LATENCY_MS = env_int("HEALTH_DEGRADED_LATENCY_MS", 1000, minimum=1)

# --- Identity ----------------------------------------------------------------------------

# iam: API Gateway's IAM authorizer verified the caller; the identity is read from the
#      Lambda event's requestContext (production).
# sigv4: this app verifies AWS SigV4 signatures (service execute-api) against
#      SIGV4_LOCAL_KEYS, emulating the IAM authorizer (the local stack and the tests).
# none: every request is the local principal; refused in production.
AUTH_MODE = env_choice("AUTH_MODE", ("iam", "sigv4", "none"), "iam" if PRODUCTION else "sigv4")
if PRODUCTION and AUTH_MODE == "none":
    raise ImproperlyConfigured("AUTH_MODE=none is for local use only; production needs iam")
# The development key pair: documented in README.md, never valid outside this machine.
SIGV4_DEV_ACCESS_KEY_ID = "AKIASKYMARSHALLOCAL1"
SIGV4_DEV_SECRET_ACCESS_KEY = "skymarshal-local-development-secret-key"  # noqa: S105
SIGV4_LOCAL_KEYS: dict[str, Any] = env_json_object(
    "SIGV4_LOCAL_KEYS",
    {}
    if PRODUCTION
    else {
        SIGV4_DEV_ACCESS_KEY_ID: {
            "secret": SIGV4_DEV_SECRET_ACCESS_KEY,
            "principal": "arn:aws:iam::000000000000:user/skymarshal-developer",
        }
    },
)
if PRODUCTION and (
    SIGV4_DEV_ACCESS_KEY_ID in SIGV4_LOCAL_KEYS
    or any(
        isinstance(entry, dict) and entry.get("secret") == SIGV4_DEV_SECRET_ACCESS_KEY
        for entry in SIGV4_LOCAL_KEYS.values()
    )
):
    raise ImproperlyConfigured(
        "SIGV4_LOCAL_KEYS holds the development key pair published in README.md; production "
        "refuses it (SKYMARSHAL_ENV=local for a developer's machine)"
    )
SIGV4_MAX_CLOCK_SKEW_SECONDS = env_int("SIGV4_MAX_CLOCK_SKEW_SECONDS", 300, minimum=1)
LOCAL_PRINCIPAL_ARN = "arn:aws:iam::000000000000:user/skymarshal-local"
# Staff log in to the browsable API with a Django account (not in production: it has no
# relational database).
STAFF_LOGIN_ENABLED = not PRODUCTION

# --- Caller identity: who owns sessions and runs (skymarshal_api/auth/identity.py) -----------

# role: a role session is owned by its role (everyone who can assume it shares), except
#       sessions of IDENTITY_TRUSTED_SESSION_ROLES, whose names AWS sets (one owner each);
# session: every session ARN is its own owner (only where trust policies pin session names).
# IAM users, root and federated users are their own ARN in both.
if env_str("IDENTITY_MODE") == "source_identity":
    raise ImproperlyConfigured(
        "IDENTITY_MODE=source_identity cannot work: API Gateway does not pass the STS source "
        "identity to the function (requestContext.identity has no such field). Keep "
        "IDENTITY_MODE=role, or pin session names in the roles' trust policies "
        "(sts:RoleSessionName, e.g. to ${aws:username}) and list those roles in "
        "IDENTITY_TRUSTED_SESSION_ROLES (see README.md, Caller identity)"
    )
IDENTITY_MODE = env_choice("IDENTITY_MODE", IDENTITY_MODES, "role")
try:
    IDENTITY_TRUSTED_SESSION_ROLES = trusted_session_roles_parse(
        env_list("IDENTITY_TRUSTED_SESSION_ROLES", ("AWSReservedSSO_*",))
    )
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None

# --- Rate limits -------------------------------------------------------------------------

# Requests per principal per window; counted in DynamoDB so that every process and Lambda
# container shares one counter.
RATE_LIMIT_INVOKE_PER_WINDOW = env_int("RATE_LIMIT_INVOKE_PER_WINDOW", 100, minimum=1)
RATE_LIMIT_DEFAULT_PER_WINDOW = env_int("RATE_LIMIT_DEFAULT_PER_WINDOW", 600, minimum=1)
RATE_LIMIT_WINDOW_SECONDS = env_int("RATE_LIMIT_WINDOW_SECONDS", 60, minimum=1, maximum=3600)
# Where the rate limits count (skymarshal_api.limits imports no app): the sessions table.
RATE_LIMIT_COUNTER = "sessions.counters.rate_limit_counter_increment"

# --- CORS and request limits -------------------------------------------------------------

CORS_ALLOWED_ORIGINS = env_list(
    "CORS_ALLOWED_ORIGINS",
    () if PRODUCTION else ("http://localhost:3000", "http://127.0.0.1:3000"),
)
CORS_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    "idempotency-key",
    "last-event-id",
    "traceparent",
    "tracestate",
    "baggage",
)
CORS_EXPOSE_HEADERS = (
    "X-Request-ID",
    "traceparent",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Location",
)
CORS_PREFLIGHT_MAX_AGE = 600
MAX_REQUEST_BODY_BYTES = env_int("MAX_REQUEST_BODY_BYTES", 64 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

# --- Security ----------------------------------------------------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
if PRODUCTION:
    # API Gateway terminates TLS; every production request arrived over HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # Load balancers and container platforms probe health over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^api/v1/health$"]
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- Observability -----------------------------------------------------------------------

# Logs: one JSON object per line (skymarshal_api.telemetry.logs). A prompt's text is never logged
# unless LOG_PROMPTS, a local debugging aid that production refuses.
LOG_PROMPTS = env_bool("LOG_PROMPTS", False)
if PRODUCTION and LOG_PROMPTS:
    raise ImproperlyConfigured("LOG_PROMPTS is for local debugging only; production refuses it")
# Metrics (CloudWatch EMF, skymarshal_api.telemetry.metrics): the namespace, the ``service``
# dimension, and dimensions added to every metric (e.g. {"stage": "prod"}).
METRICS_NAMESPACE = env_str("METRICS_NAMESPACE", "SkyMarshalApi") or "SkyMarshalApi"
METRICS_SERVICE = env_str("METRICS_SERVICE", "skymarshal-api") or "skymarshal-api"
METRICS_DIMENSIONS: dict[str, str] = {
    str(name): str(value) for name, value in env_json_object("METRICS_DIMENSIONS", {}).items()
}
if len(METRICS_DIMENSIONS) > 25:
    raise ImproperlyConfigured("METRICS_DIMENSIONS: at most 25 dimensions (CloudWatch allows 30)")
# Traces (AWS X-Ray, skymarshal_api.telemetry.tracing): on by default on Lambda only; elsewhere an
# X-Ray daemon must listen at AWS_XRAY_DAEMON_ADDRESS (default 127.0.0.1:2000).
TRACING_ENABLED = env_bool("TRACING_ENABLED", bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")))
TRACING_SERVICE = env_str("TRACING_SERVICE", METRICS_SERVICE) or METRICS_SERVICE
try:
    TRACING_DAEMON_ADDRESS = daemon_address(os.environ.get("AWS_XRAY_DAEMON_ADDRESS"))
except ValueError as error:
    raise ImproperlyConfigured(str(error)) from error

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "skymarshal_api.telemetry.logs.JsonFormatter", "service": METRICS_SERVICE},
        # EMF documents are JSON already: written as they are, one per line.
        "emf": {"format": "%(message)s"},
    },
    "handlers": {
        "console": {
            "class": "skymarshal_api.telemetry.logs.InstrumentedStreamHandler",
            "formatter": "json",
        },
        "emf": {
            "class": "skymarshal_api.telemetry.logs.InstrumentedStreamHandler",
            "formatter": "emf",
            "stream": "ext://sys.stdout",
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "botocore": {"level": "WARNING"},
        "pynamodb": {"level": "WARNING"},
        "skymarshal_api.emf": {"handlers": ["emf"], "level": "INFO", "propagate": False},
    },
}
APPEND_SLASH = False

SILENCED_SYSTEM_CHECKS = [
    # HSTS preload is a decision of the owner of the API's domain (execute-api's or a
    # custom domain's), not of this application.
    "security.W021",
]
