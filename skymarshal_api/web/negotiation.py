"""Content negotiation that answers JSON when the client's Accept header names nothing
the API can produce (awscurl, for one, sends ``Accept: application/xml`` by default): a
JSON answer is more use to such a client than 406."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class JsonFallbackNegotiation(DefaultContentNegotiation):
    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        candidates = list(renderers)
        try:
            selected: Any = super().select_renderer(request, candidates, format_suffix)
        except NotAcceptable:
            if format_suffix or not candidates:
                raise
            return candidates[0], str(candidates[0].media_type)
        return selected[0], str(selected[1])
