"""Opaque page cursors: a position signed with SECRET_KEY, so a client can only hand back
a cursor the API gave it, for the same listing."""

from __future__ import annotations

from typing import Any

from django.core import signing

from skymarshal_api.web.errors import InvalidCursor


def cursor_encode(position: dict[str, Any], *, purpose: str) -> str:
    return signing.dumps(position, salt=f"skymarshal.cursor.{purpose}", compress=True)


def cursor_decode(cursor: str, *, purpose: str) -> dict[str, Any]:
    """The position in ``cursor``; raises InvalidCursor for anything the API did not issue
    for ``purpose``."""
    try:
        position = signing.loads(cursor, salt=f"skymarshal.cursor.{purpose}")
    except signing.BadSignature:
        raise InvalidCursor() from None
    if not isinstance(position, dict):
        raise InvalidCursor()
    return position
