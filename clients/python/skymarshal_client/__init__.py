"""Python client for the SkyMarshal API: ``from skymarshal_client import Client``."""

from skymarshal_client.client import OPERATIONS, Client, Webhook
from skymarshal_client.errors import *  # noqa: F403 - one exception per error code
from skymarshal_client.errors import ERRORS_BY_CODE, SkyMarshalError, error_for
from skymarshal_client.models import Event, Invocation, InvokeResponse

__all__ = [
    "ERRORS_BY_CODE",
    "OPERATIONS",
    "Client",
    "Event",
    "Invocation",
    "InvokeResponse",
    "Webhook",
    "SkyMarshalError",
    "error_for",
    *(cls.__name__ for cls in ERRORS_BY_CODE.values()),
]
