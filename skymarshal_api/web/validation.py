"""Validation shared by several endpoints."""

from __future__ import annotations

import re

from skymarshal_api.web.errors import InvalidRequest

# Canonical text of a UUID version 4: lower-case hex, hyphens, version nibble 4 and the
# RFC 4122 variant. (uuid.UUID(s, version=4) does not check the version: it overwrites it.)
UUID4_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
_UUID4 = re.compile(UUID4_PATTERN)


UUID4_EXPECTED = (
    "must be a canonical UUID version 4 (lower-case, e.g. 0b5a3f4e-8c1d-4f2a-9b7e-1c2d3e4f5a6b)."
)


def is_uuid4(value: str) -> bool:
    return bool(_UUID4.match(value))


def session_id_validate(value: str, *, field: str = "session_id") -> str:
    """``value`` when it is a canonical UUID v4; raises InvalidRequest naming ``field``."""
    if not is_uuid4(value):
        raise InvalidRequest(
            f"{field} {UUID4_EXPECTED}",
            details={"fields": {field: ["Not a canonical UUID version 4."]}},
        )
    return value
