"""Loads the settings in a fresh process per environment, without paying Python's start-up
and the libraries' imports each time.

``python -m tests.settings_loader`` imports the libraries every settings load imports
(Django, DRF, botocore, PynamoDB, pydantic), none of the project's modules, and never calls
``django.setup()``. For each request, one JSON line on stdin
(``{"env": {...}, "code": "..."}``), it forks a child that replaces its whole environment
with ``env``, runs ``code`` as ``python -c`` would (a traceback on stderr and exit status 1
when it raises), and answers one JSON line on stdout: ``returncode``, ``stdout``,
``stderr``. Each child starts from the same state as the last: the settings, the apps and
every project module are imported in it, never in the loader.

A fresh ``python -c`` costs about 1 s of CPU here; a forked child about 0.3 s."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

# What a settings load imports, and reads neither a setting nor an environment variable when
# imported (the loader runs without DJANGO_SETTINGS_MODULE: one that did would fail here).
# DRF's views and renderers read REST_FRAMEWORK when imported; they are left to the child.
PRELOADED = (
    "django.apps",
    "django.conf",
    "django.core.handlers.wsgi",
    "django.db.models",
    "django.test",
    "django.urls",
    "rest_framework.serializers",
    "botocore.session",
    "botocore.client",
    "pynamodb.models",
    "pydantic",
)


def _child(request: dict[str, Any], out: Path, err: Path) -> None:
    """Runs in the forked child; never returns."""
    status = 0
    with out.open("wb") as stdout, err.open("wb") as stderr:
        os.dup2(stdout.fileno(), 1)
        os.dup2(stderr.fileno(), 2)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - flushed before _exit
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        os.environ.clear()
        os.environ.update(request["env"])
        try:
            code = compile(request["code"], "<string>", "exec")
            exec(code, {"__name__": "__main__"})  # noqa: S102 - as python -c runs it
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # reported as python -c reports it
            traceback.print_exc()
            status = 1
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(status)


def serve() -> None:
    for name in PRELOADED:
        __import__(name)
    answers = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        with tempfile.TemporaryDirectory() as folder:
            out, err = Path(folder) / "stdout", Path(folder) / "stderr"
            pid = os.fork()
            if pid == 0:
                _child(request, out, err)
            _, wait_status = os.waitpid(pid, 0)
            answer = {
                "returncode": os.waitstatus_to_exitcode(wait_status),
                "stdout": out.read_text(errors="replace") if out.exists() else "",
                "stderr": err.read_text(errors="replace") if err.exists() else "",
            }
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    serve()
