"""What a cold start imports: the API's requests need none of drf-spectacular's schema
machinery (nor Django's test client, which it imports), nor cryptography's Fernet until a
webhook secret or a replay record is used; the schema still has every operation's
annotations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from scripts.stack import ROOT

SCHEMA_MACHINERY = (
    "drf_spectacular.openapi",
    "drf_spectacular.plumbing",
    "drf_spectacular.extensions",
    "drf_spectacular.views",
    "django.test",
    "rest_framework.test",
    "cryptography.fernet",  # webhook secrets and replay records only
)


def _imported_after(code: str) -> set[str]:
    """The schema machinery's modules a new interpreter has imported after ``code``."""
    probe = (
        "import json, sys\n"
        "import skymarshal_api.wsgi\n"
        f"{code}\n"
        f"print(json.dumps(sorted(m for m in {SCHEMA_MACHINERY!r} if m in sys.modules)))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "skymarshal_api.settings"}
    env["SKYMARSHAL_ENV"] = "test"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_a_cold_start_and_its_routes_import_no_schema_machinery() -> None:
    resolve_every_api_route = (
        "from django.urls import resolve\n"
        "for path in ('/api/v1/invoke', '/api/v1/invocations', '/api/v1/health',\n"
        "             '/api/v1/sessions/x', '/api/v1/identity', '/api/v1/webhook-secrets'):\n"
        "    resolve(path)\n"
        "from invocations.representation import invocation_representation\n"
        "from sessions.run_selectors import run_find\n"
    )
    assert _imported_after(resolve_every_api_route) == set()


def test_the_links_of_a_run_reverse_without_the_schema_and_as_the_root_does() -> None:
    from django.urls import reverse

    from invocations.representation import _link

    probe = "from invocations.representation import _link\n_link('invocation', 'x')\n"
    assert _imported_after(probe) == set()
    for name, key in (
        ("invocation", "r"),
        ("invocation-events", "r"),
        ("invocation-wait", "r"),
        ("invocation-deliveries", "r"),
        ("session-history", "s"),
    ):
        assert _link(name, key) == reverse(name, args=[key])


def test_the_schema_s_routes_bring_it_and_its_annotations() -> None:
    """The docs' URLconf is imported by name when a schema is made or served; with it the
    annotations recorded at import are applied."""
    code = (
        "from django.urls import resolve\n"
        "resolve('/api/v1/schema/')\n"
        "from invocations.apis import InvokeApi\n"
        "assert InvokeApi.post.kwargs['schema'].__name__ == 'ExtendedSchema'\n"
    )
    assert _imported_after(code) >= {"drf_spectacular.openapi", "drf_spectacular.views"}


def test_a_view_annotated_after_the_annotations_were_applied_is_annotated_at_once() -> None:
    from rest_framework.views import APIView

    from skymarshal_api.web.schema_annotations import extend_schema, schema_annotations_apply

    schema_annotations_apply()

    class Late(APIView):
        @extend_schema(operation_id="late_get")
        def get(self, request: Any) -> None:
            return None

    assert Late.get.kwargs["schema"].__name__ == "ExtendedSchema"  # type: ignore[attr-defined]
