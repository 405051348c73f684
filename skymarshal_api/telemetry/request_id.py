"""The request id: a fresh UUID v4 for every request, never taken from the client."""

from __future__ import annotations

import uuid
from typing import Any

REQUEST_ID_HEADER = "X-Request-ID"


def new_request_id() -> str:
    return str(uuid.uuid4())


def request_id_of(request: Any) -> str:
    """The id the middleware gave ``request`` (a Django or DRF request), or a new one."""
    request_id = getattr(request, "request_id", None) if request is not None else None
    return request_id if isinstance(request_id, str) else new_request_id()
