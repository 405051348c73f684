"""A Django staff database of a test's own, for the browsable API's login."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scripts.stack import ROOT


def staff_database_env(path: Path, create_users: str) -> dict[str, str]:
    """Migrate a SQLite database at ``path``, run ``create_users`` (Python, in
    ``manage.py shell``) in it, and return the API environment that uses it."""
    env = {"LOCAL_DATABASE_PATH": str(path), "SKYMARSHAL_ENV": "test"}
    for command in (["migrate", "--no-input"], ["shell", "-c", create_users]):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
            capture_output=True,
            timeout=120,
        )
    return env
