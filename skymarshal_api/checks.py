"""System checks of settings that depend on each other (``manage.py check``, and every
start of the app)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from skymarshal_api.auth.sigv4 import local_keys_parse


@register()
def sigv4_local_keys_check(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    if settings.AUTH_MODE != "sigv4":
        return []
    try:
        local_keys_parse(settings.SIGV4_LOCAL_KEYS)
    except ValueError as exc:
        return [Error(str(exc), hint="See SIGV4_LOCAL_KEYS in README.md.", id="skymarshal.E001")]
    return []
