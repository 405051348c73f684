"""Zappa's ``zip`` callback: drop the botocore service models the API never loads, and add
the bytecode of every module.

The package bundles the pinned botocore (the Lambda runtime's own copy may predate the
``bedrock-agentcore`` models), but botocore ships ~440 service models, 15 MB compressed, of
which the API uses four. Zappa runs this after it has written the zip, for ``zappa package``
and for ``zappa deploy``/``update`` alike, so every package is pruned the same way.

Lambda extracts a function's code into /var/task, which is read-only, so Python cannot keep
the bytecode it compiles there: a module without bytecode in the package is compiled again
by every new execution environment (Zappa leaves ``__pycache__`` out). Each ``.py`` of the
zip gets its ``__pycache__/NAME.cpython-313.pyc``, compiled by this Python (the stage's
runtime, checked) as an unchecked-hash pyc (PEP 552): loaded without comparing timestamps,
which zip extraction does not keep. ``make bench``'s ``lambda`` section measures the cold
start it saves.

Zappa imports this file by path, outside the ``scripts`` package: standard library only.
"""

from __future__ import annotations

import os
import py_compile
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

# The models botocore loads in the Lambda: the runtime client (AgentCoreRuntimeClient makes
# a data-plane and a control-plane client; StopRuntimeSession), health (GetAgentRuntime),
# the sessions table, STS for credential providers that assume a role, and Lambda and SNS
# (zappa.asynchronous makes both clients when imported, to send background runs as
# asynchronous tasks).
BOTOCORE_SERVICES_KEPT = frozenset(
    {
        "bedrock-agentcore",
        "bedrock-agentcore-control",
        "dynamodb",
        "sts",
        "lambda",
        "sns",
    }
)
_SERVICE_DATA = re.compile(r"^botocore/data/([^/]+)/")


def botocore_data_prune(zip_path: Path, keep: frozenset[str] = BOTOCORE_SERVICES_KEPT) -> int:
    """Rewrite ``zip_path`` without the botocore service models outside ``keep``; returns
    how many entries were dropped. Raises ValueError when a kept model is missing."""
    dropped = 0
    seen: set[str] = set()
    handle, temporary = tempfile.mkstemp(suffix=".zip", dir=zip_path.parent)
    os.close(handle)
    try:
        with (
            zipfile.ZipFile(zip_path) as source,
            zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as target,
        ):
            for entry in source.infolist():
                match = _SERVICE_DATA.match(entry.filename)
                if match and match.group(1) not in keep:
                    dropped += 1
                    continue
                if match:
                    seen.add(match.group(1))
                with source.open(entry) as data:
                    target.writestr(entry, data.read(), compress_type=zipfile.ZIP_DEFLATED)
        missing = keep - seen
        if missing:
            raise ValueError(f"the package has no botocore model for {sorted(missing)}")
        shutil.move(temporary, zip_path)
        os.chmod(zip_path, 0o644)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return dropped


def bytecode_add(zip_path: Path, runtime: str) -> int:
    """Add to ``zip_path`` the bytecode of each of its modules, for ``runtime`` (a Lambda
    runtime name, which must be this Python's): how many modules were compiled. A module
    that does not compile (a template, one for another version) is left as source; one
    whose bytecode the zip holds already is left as it is."""
    ours = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if runtime != ours:
        raise ValueError(f"the stage runs {runtime}; its bytecode cannot be built by {ours}")
    compiled = 0
    with tempfile.TemporaryDirectory(prefix="skymarshal-bytecode-") as work:
        root = Path(work)
        with zipfile.ZipFile(zip_path) as archive:
            present = set(archive.namelist())
            sources = {name: _pyc_name(name) for name in present if name.endswith(".py")}
            sources = {name: pyc for name, pyc in sources.items() if pyc not in present}
            for name in sources:
                archive.extract(name, root)
        with zipfile.ZipFile(zip_path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, pyc in sorted(sources.items()):
                try:
                    # An explicit cfile: PYTHONPYCACHEPREFIX would send it elsewhere.
                    py_compile.compile(
                        str(root / name),
                        cfile=str(root / pyc),
                        dfile=f"/var/task/{name}",  # the paths of tracebacks on Lambda
                        doraise=True,
                        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
                    )
                except py_compile.PyCompileError:
                    continue
                archive.write(root / pyc, pyc)
                compiled += 1
    return compiled


def _pyc_name(source: str) -> str:
    """Where this Python looks for the bytecode of ``source`` (``a/b.py``)."""
    folder, _, module = source.rpartition("/")
    return f"{folder}/__pycache__/".lstrip("/") + (
        f"{module[:-3]}.{sys.implementation.cache_tag}.pyc"
    )


def zappa_zip_callback(cli: Any) -> None:
    """``callbacks.zip`` in zappa_settings.json; Zappa passes its CLI object (its
    ``runtime`` is the stage's, ``extends`` resolved)."""
    zip_path = Path(cli.zip_path).resolve()
    dropped = botocore_data_prune(zip_path)
    print(f"Pruned {dropped} unused botocore model files from {zip_path.name}")
    compiled = bytecode_add(zip_path, cli.runtime)
    print(f"Added the bytecode of {compiled} modules to {zip_path.name}")
