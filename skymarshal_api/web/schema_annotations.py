"""drf-spectacular's ``extend_schema``, applied when a schema is made instead of when a view
module is imported.

drf-spectacular's decorator subclasses the view's schema class, which imports its schema
generator (``drf_spectacular.openapi``, its extensions and plumbing, and Django's test
client with them): about 60 ms of every cold start, for requests that never build a
schema. Views take ``extend_schema`` from here: it records what it is given, and
``schema_annotations_apply`` hands each record to drf-spectacular's decorator, in the order
they were made. skymarshal_api/docs_urls.py applies them when it is imported, which is
before any schema is made: a schema is made by enumerating the URLconf, which imports it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_recorded: list[tuple[Callable[..., Any], dict[str, Any]]] = []
_applied = [False]  # once applied, a view imported later is annotated at once
_lock = threading.RLock()


def extend_schema(**annotations: Any) -> Callable[[F], F]:
    """drf_spectacular.utils.extend_schema, recorded for ``schema_annotations_apply``."""

    def record(view: F) -> F:
        with _lock:
            _recorded.append((view, annotations))
            if _applied[0]:
                schema_annotations_apply()
        return view

    return record


def schema_annotations_apply() -> None:
    """Apply every recorded ``extend_schema`` (each once), and from now on each one as it
    is made."""
    from drf_spectacular.utils import extend_schema as spectacular_extend_schema

    with _lock:
        _applied[0] = True
        while _recorded:
            view, annotations = _recorded.pop(0)
            spectacular_extend_schema(**annotations)(view)
