"""Settings come from the environment; production refuses to start without its values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from scripts.stack import ROOT

pytestmark = pytest.mark.slow

PRODUCTION = {
    "SKYMARSHAL_ENV": "production",
    "DJANGO_SECRET_KEY": "q7Vw-2XkP_9rZt4LmN8sHc3JdF6yBgE1aUoI0eRxWvTnKpSz5h",
    "ALLOWED_HOSTS": "abc123.execute-api.us-east-1.amazonaws.com",
    "SESSION_TABLE_NAME": "skymarshal-sessions-prod",
    "AGENTCORE_RUNTIME_ARN": "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/sm-1",
}


class _Loader:
    """``tests.settings_loader``, started on first use: each load is a forked child of it,
    with exactly the environment given (as a subprocess of its own would have it)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None

    def run(self, env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
        if self.process is None:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.settings_loader"],
                cwd=ROOT,
                env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps({"env": env, "code": code}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the settings loader exited ({self.process.poll()})"
        answer = json.loads(line)
        return subprocess.CompletedProcess(
            ["python", "-c", code], answer["returncode"], answer["stdout"], answer["stderr"]
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.communicate(timeout=10)  # closes its stdin: it ends
            self.process = None


_LOADER = _Loader()


@pytest.fixture(scope="module", autouse=True)
def _loader_stopped() -> Iterator[None]:
    yield
    _LOADER.stop()


def _load_settings(
    env: dict[str, str],
    show: str = "settings.SESSION_TABLE_NAME, settings.AGENTCORE_MODE, settings.DEBUG",
    *,
    code: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """The settings loaded in a new process with ``env`` over this one's environment (the
    production values removed): ``show`` printed, or ``code`` run, after django.setup()."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(tuple(PRODUCTION))}
    return _LOADER.run(
        {**clean, "DJANGO_SETTINGS_MODULE": "skymarshal_api.settings", **env},
        code or f"import django; django.setup(); from django.conf import settings; print({show})",
    )


def test_production_starts_with_every_required_value() -> None:
    shown = "settings.SESSION_TABLE_NAME, settings.AGENTCORE_MODE, settings.DEBUG"
    result = _load_settings(PRODUCTION, f"{shown}, settings.REQUEST_HOLD_SECONDS")
    assert result.returncode == 0, result.stderr
    # No request is held past 25 s, under API Gateway's 29 s integration timeout.
    assert result.stdout.split() == ["skymarshal-sessions-prod", "aws", "False", "25.0"]


@pytest.mark.parametrize("missing", sorted(set(PRODUCTION) - {"SKYMARSHAL_ENV"}))
def test_production_refuses_to_start_without(missing: str) -> None:
    result = _load_settings({k: v for k, v in PRODUCTION.items() if k != missing})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr.splitlines()[-1]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SKYMARSHAL_ENV", "staging", "SKYMARSHAL_ENV must be one of local, test, production"),
        ("HEALTH_CACHE_SECONDS", "soon", "HEALTH_CACHE_SECONDS must be a number"),
        ("DYNAMODB_MAX_RETRY_ATTEMPTS", "-1", "DYNAMODB_MAX_RETRY_ATTEMPTS must be at least 0"),
        ("AGENTCORE_MODE", "aws", "AGENTCORE_RUNTIME_ARN"),
        ("AWS_XRAY_DAEMON_ADDRESS", "xray-daemon", "AWS_XRAY_DAEMON_ADDRESS='xray-daemon'"),
    ],
)
def test_bad_values_are_refused_with_a_message(name: str, value: str, message: str) -> None:
    result = _load_settings({"SKYMARSHAL_ENV": "local", name: value})
    assert result.returncode != 0
    assert message in result.stderr.splitlines()[-1]


def test_dynamodb_endpoint_aws_means_no_endpoint() -> None:
    show = "settings.DYNAMODB_ENDPOINT_URL"
    local = {"SKYMARSHAL_ENV": "local"}
    assert _load_settings({**local, "DYNAMODB_ENDPOINT_URL": "aws"}, show).stdout.split() == [
        "None"
    ]
    assert _load_settings(local, show).stdout.split() == ["http://127.0.0.1:8001"]
    assert _load_settings(PRODUCTION, show).stdout.split() == ["None"]


def test_local_defaults_need_only_skymarshal_env_local() -> None:
    result = _load_settings({"SKYMARSHAL_ENV": "local"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["skymarshal-sessions", "local", "False"]


def test_without_skymarshal_env_the_app_is_production() -> None:
    result = _load_settings({})
    assert result.returncode != 0
    assert "must be set when SKYMARSHAL_ENV=production" in result.stderr.splitlines()[-1]
    unset = {k: v for k, v in PRODUCTION.items() if k != "SKYMARSHAL_ENV"}
    shown = _load_settings(unset, "settings.SKYMARSHAL_ENV, settings.AUTH_MODE, settings.DEBUG")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["production", "iam", "False"]


DEV_KEYS = json.dumps(
    {
        "AKIASKYMARSHALLOCAL1": {
            "secret": "skymarshal-local-development-secret-key",
            "principal": "p",
        }
    }
)
RENAMED_DEV_KEY = json.dumps(
    {
        "AKIAOTHERKEY00000001": {
            "secret": "skymarshal-local-development-secret-key",
            "principal": "p",
        }
    }
)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SIGV4_LOCAL_KEYS", DEV_KEYS, "SIGV4_LOCAL_KEYS holds the development key pair"),
        ("SIGV4_LOCAL_KEYS", RENAMED_DEV_KEY, "SIGV4_LOCAL_KEYS holds the development key pair"),
        (
            "DJANGO_SECRET_KEY",
            "skymarshal-local-development-only-key-not-for-production-use",
            "DJANGO_SECRET_KEY is the development key",
        ),
        ("AUTH_MODE", "none", "AUTH_MODE=none is for local use only"),
        ("DJANGO_DEBUG", "true", "DJANGO_DEBUG is for local use only"),
    ],
)
def test_without_skymarshal_env_every_local_default_is_refused(
    name: str, value: str, message: str
) -> None:
    unset = {k: v for k, v in PRODUCTION.items() if k != "SKYMARSHAL_ENV"}
    result = _load_settings({**unset, "AUTH_MODE": "sigv4", name: value})
    assert result.returncode != 0
    assert message in result.stderr.splitlines()[-1]
    # The same value is accepted where it belongs: on a developer's machine.
    local = _load_settings({"SKYMARSHAL_ENV": "local", name: value})
    assert local.returncode == 0, local.stderr


def test_production_refuses_auth_mode_none() -> None:
    result = _load_settings({**PRODUCTION, "AUTH_MODE": "none"})
    assert result.returncode != 0
    assert "AUTH_MODE=none is for local use only" in result.stderr.splitlines()[-1]


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(tuple(PRODUCTION))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_with_production_settings() -> None:
    result = _manage(PRODUCTION, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_openapi_schema_validates_without_warnings() -> None:
    result = _manage({"SKYMARSHAL_ENV": "test"}, "spectacular", "--validate", "--fail-on-warn")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "securitySchemes" in result.stdout


def test_a_lambda_refuses_the_local_defaults() -> None:
    result = _load_settings(
        {"SKYMARSHAL_ENV": "local", "AWS_LAMBDA_FUNCTION_NAME": "skymarshal-api-dev"}
    )
    assert result.returncode != 0
    assert "set SKYMARSHAL_ENV=production" in result.stderr.splitlines()[-1]
    on_lambda = {**PRODUCTION, "AWS_LAMBDA_FUNCTION_NAME": "x"}
    # On Lambda, background runs go to the worker function, which must be named.
    assert "RUN_WORKER_FUNCTION" in _load_settings(on_lambda).stderr
    assert _load_settings({**on_lambda, "RUN_WORKER_FUNCTION": "x-worker"}).returncode == 0


def test_production_serves_no_login_but_the_browsable_api() -> None:
    show = (
        "settings.REST_FRAMEWORK['DEFAULT_RENDERER_CLASSES'], "
        "'SessionMiddleware' in ' '.join(settings.MIDDLEWARE), "
        "__import__('django.urls', fromlist=['x']).resolve('/api/v1/health').url_name"
    )
    result = _load_settings(PRODUCTION, show)
    assert result.returncode == 0, result.stderr
    assert "BrowsableAPIRenderer" in result.stdout
    assert "False" in result.stdout
    login = _load_settings(
        PRODUCTION,
        "__import__('django.urls', fromlist=['x']).resolve('/api-auth/login/')",
    )
    assert "Resolver404" in login.stderr


# A request API Gateway authorized, as Zappa hands it to Django: the caller is
# requestContext.identity of the Lambda event (AUTH_MODE=iam), there is no database and no
# login; the browsable API renders for it.
BROWSE_IN_PRODUCTION = """
import django, json
django.setup()
from django.test import Client
event = {"requestContext": {"identity": {
    "userArn": "arn:aws:sts::123456789012:assumed-role/Ops/alice",
    "accountId": "123456789012", "caller": "AROAEXAMPLE:alice"}}}
client = Client()
for accept in ("text/html", "application/json"):
    response = client.get("/api/v1/identity", HTTP_ACCEPT=accept, secure=True,
                          HTTP_HOST="abc123.execute-api.us-east-1.amazonaws.com",
                          **{"lambda.event": event})
    print("RESULT", json.dumps({"status": response.status_code, "type": response["Content-Type"],
                      "body": response.content.decode()}))
anonymous = client.get("/api/v1/identity", HTTP_ACCEPT="text/html", secure=True,
                       HTTP_HOST="abc123.execute-api.us-east-1.amazonaws.com")
print("RESULT", json.dumps({"status": anonymous.status_code, "type": anonymous["Content-Type"],
                  "body": anonymous.content.decode()}))
"""


def test_production_renders_the_browsable_api_for_the_iam_principal() -> None:
    result = _load_settings(
        {
            **PRODUCTION,
            # The rate limiter's table is out of reach here (it lets requests through).
            "DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_ACCESS_KEY_ID": "AKIAPLACEHOLDER",
            "AWS_SECRET_ACCESS_KEY": "placeholder",
            "DYNAMODB_MAX_RETRY_ATTEMPTS": "0",
        },
        code=BROWSE_IN_PRODUCTION,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line[7:] for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    html, as_json, anonymous = (json.loads(line) for line in lines)
    assert html["status"] == 200, html
    assert html["type"].startswith("text/html")
    assert "arn:aws:sts::123456789012:assumed-role/Ops/alice" in html["body"]
    assert "Log in" not in html["body"]
    assert as_json["status"] == 200
    assert json.loads(as_json["body"])["authenticated_by"] == "api_gateway"
    # Without API Gateway's identity nobody is anybody, in HTML as in JSON.
    assert anonymous["status"] == 401
    assert "UNAUTHORIZED" in anonymous["body"]


def test_malformed_sigv4_local_keys_fail_the_system_check() -> None:
    result = _manage(
        {"SKYMARSHAL_ENV": "test", "SIGV4_LOCAL_KEYS": '{"AKIDX": {"secret": "s"}}'}, "check"
    )
    assert result.returncode != 0
    assert "skymarshal.E001" in result.stderr


def test_production_refuses_to_log_prompts() -> None:
    result = _load_settings({**PRODUCTION, "LOG_PROMPTS": "true"})
    assert result.returncode != 0
    assert "LOG_PROMPTS" in result.stderr


def test_metrics_dimensions_must_be_a_json_object() -> None:
    result = _load_settings({"SKYMARSHAL_ENV": "local", "METRICS_DIMENSIONS": '["stage"]'})
    assert result.returncode != 0
    assert "METRICS_DIMENSIONS must be a JSON object" in result.stderr


def test_production_refuses_webhooks_over_local_http() -> None:
    result = _load_settings({**PRODUCTION, "WEBHOOK_ALLOW_LOCAL_HTTP": "true"})
    assert result.returncode != 0
    assert "WEBHOOK_ALLOW_LOCAL_HTTP is for local use only" in result.stderr


def test_the_webhook_retry_schedule_is_a_list_of_delays() -> None:
    for value in ("5,soon", "5,-1", "5,700000", ","):
        result = _load_settings(
            {"SKYMARSHAL_ENV": "local", "WEBHOOK_RETRY_SCHEDULE_SECONDS": value}
        )
        assert result.returncode != 0, value
        assert "WEBHOOK_RETRY_SCHEDULE_SECONDS" in result.stderr, value
