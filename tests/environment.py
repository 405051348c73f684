"""A pytest plugin loaded before Django's settings (``-p tests.environment`` in pyproject's
addopts): the suite runs with SKYMARSHAL_ENV=test unless told otherwise, since the
settings default to production, which refuses the local defaults the tests rely on."""

from __future__ import annotations

import os

os.environ.setdefault("SKYMARSHAL_ENV", "test")
