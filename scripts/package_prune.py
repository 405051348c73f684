"""Zappa's ``zip`` callback: drop the botocore service models the API never loads.

The package bundles the pinned botocore (the Lambda runtime's own copy may predate the
``bedrock-agentcore`` models), but botocore ships ~440 service models, 15 MB compressed, of
which the API uses four. Zappa runs this after it has written the zip, for ``zappa package``
and for ``zappa deploy``/``update`` alike, so every package is pruned the same way.

Zappa imports this file by path, outside the ``scripts`` package: standard library only.
"""

from __future__ import annotations

import os
import re
import shutil
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


def zappa_zip_callback(cli: Any) -> None:
    """``callbacks.zip`` in zappa_settings.json; Zappa passes its CLI object."""
    zip_path = Path(cli.zip_path).resolve()
    dropped = botocore_data_prune(zip_path)
    print(f"Pruned {dropped} unused botocore model files from {zip_path.name}")
