"""The OpenAPI schema: openapi.yaml is what the code generates, and every operation in it
documents its errors in the one error shape, with examples that match their schemas.

The checks iterate over every operation of the schema, so an endpoint added later is held
to them as soon as openapi.yaml is regenerated (`make schema`).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from skymarshal_api.web import errors
from skymarshal_api.web.gateway_responses import GATEWAY_ERRORS
from tests.openapi import (
    OPENAPI_YAML,
    REGENERATE,
    examples,
    openapi_document,
    operations,
    schema_validator,
)

ERROR_REF = "#/components/schemas/ErrorResponse"
# Errors that any signed request can get, and that any request at all can get (API
# Gateway's among them: its throttle, a Lambda it could not invoke, a crash, its 29 s).
AUTHENTICATED_STATUSES = {"401", "403", "429"}
EVERY_OPERATION_STATUSES = {"429", "500", "502", "503", "504"}
# Paths served for people, not part of the API's contract.
HTML_PAGES = {"/api/v1/docs/", "/api/v1/redoc/"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def _error_codes_by_status() -> dict[int, set[str]]:
    codes: dict[int, set[str]] = {}
    for cls in _subclasses(errors.ApplicationError):
        codes.setdefault(cls.status_code, set()).add(cls.error_code)
    for gateway_error in GATEWAY_ERRORS:
        codes.setdefault(gateway_error.documented_status, set()).add(gateway_error.error_code)
    return codes


def _subclasses(cls: type[errors.ApplicationError]) -> list[type[errors.ApplicationError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _subclasses(sub)
    return found


def test_openapi_yaml_is_what_the_code_generates(tmp_path: Path) -> None:
    generated = tmp_path / "openapi.yaml"
    # The command `make schema` runs: validation on, any warning an error.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(generated))
    expected, committed = generated.read_text(), OPENAPI_YAML.read_text()
    if committed != expected:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                "openapi.yaml (committed)",
                "openapi.yaml (generated from the code)",
                n=2,
            )
        )
        pytest.fail(f"openapi.yaml is out of date: {REGENERATE}.\n{diff[:6000]}")


def test_every_api_view_route_is_an_operation(document: dict[str, Any]) -> None:
    documented = {(op.path, op.method) for op in operations(document)}
    missing = []
    for route, view in _api_routes(get_resolver().url_patterns, prefix="/"):
        if route in HTML_PAGES:
            continue
        for method in view.http_method_names:
            if method in ("options", "head") or not hasattr(view, method):
                continue
            if (route, method) not in documented:
                missing.append(f"{method.upper()} {route}")
    assert not missing, f"routes missing from openapi.yaml ({REGENERATE}): {missing}"
    assert len(documented) >= 6


def _api_routes(patterns: list[Any], *, prefix: str) -> list[tuple[str, type[APIView]]]:
    routes = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            routes += _api_routes(pattern.url_patterns, prefix=prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            view = getattr(pattern.callback, "view_class", None) or getattr(
                pattern.callback, "cls", None
            )
            if isinstance(view, type) and issubclass(view, APIView):
                path = prefix + str(pattern.pattern).replace("<str:", "{").replace(">", "}")
                routes.append((path, view))
    return routes


def test_every_operation_is_named_and_documents_its_errors(document: dict[str, Any]) -> None:
    problems = []
    for operation in operations(document):
        spec, label = operation.spec, operation.label
        if not spec.get("operationId") or not spec.get("summary"):
            problems.append(f"{label}: operationId and summary are required")
        statuses = set(spec["responses"])
        expected = EVERY_OPERATION_STATUSES | (
            AUTHENTICATED_STATUSES if operation.authenticated else set()
        )
        if not expected <= statuses:
            problems.append(f"{label}: errors not documented: {sorted(expected - statuses)}")
        if operation.authenticated and spec["security"] != [{"sigv4": []}]:
            problems.append(f"{label}: security must be SigV4, got {spec['security']}")
        if not any(status.startswith("2") for status in statuses):
            problems.append(f"{label}: no success response")
        for status, response in spec["responses"].items():
            if not response.get("description"):
                problems.append(f"{label} {status}: no description")
            if status.startswith("2") or (operation.operation_id == "health_get"):
                continue
            for media_type, content in response.get("content", {}).items():
                if content.get("schema") != {"$ref": ERROR_REF}:
                    problems.append(f"{label} {status} {media_type}: not the error shape")
                if not content.get("examples"):
                    problems.append(f"{label} {status} {media_type}: no example")
    assert not problems, "\n".join(problems)


def test_every_example_matches_its_schema(document: dict[str, Any]) -> None:
    checked = 0
    problems = []
    codes = _error_codes_by_status()
    for example in examples(document):
        where = f"{example.operation.label} {example.status or 'request'} {example.name}"
        if example.media_type == "text/event-stream":
            continue  # tests/invocations/test_invoke_openapi_examples.py parses it
        validator = schema_validator(document, example.schema)
        problems += [f"{where}: {error.message}" for error in validator.iter_errors(example.value)]
        if example.schema == {"$ref": ERROR_REF}:
            status = int(str(example.status))
            if example.value["error_code"] not in codes.get(status, set()):
                problems.append(
                    f"{where}: {example.value['error_code']} is not an error code of status "
                    f"{status} ({sorted(codes.get(status, set()))})"
                )
        checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 20


def test_invoke_documents_json_and_server_sent_events(document: dict[str, Any]) -> None:
    ok = document["paths"]["/api/v1/invoke"]["post"]["responses"]["200"]["content"]
    assert set(ok) == {"application/json", "text/event-stream"}
    assert ok["application/json"]["schema"] == {"$ref": "#/components/schemas/InvokeResponse"}
    event = ok["text/event-stream"]["schema"]
    assert event["properties"]["event"]["enum"] == ["start", "chunk", "complete", "error"]
    validator = schema_validator(document, event)
    assert validator.is_valid({"id": "1", "event": "start", "data": "{}"})
    assert not validator.is_valid({"id": "0", "event": "start", "data": "{}"})
    assert not validator.is_valid({"id": "2", "event": "progress", "data": "{}"})


def test_sigv4_is_the_security_scheme(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"] == {
        "sigv4": {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": document["components"]["securitySchemes"]["sigv4"]["description"],
        }
    }
    assert "execute-api" in document["components"]["securitySchemes"]["sigv4"]["description"]
    unauthenticated = {op.operation_id for op in operations(document) if not op.authenticated}
    assert unauthenticated == {"health_get", "schema_get"}
