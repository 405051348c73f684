"""Replay records: an interaction the sessions table could not take, as one log line.

When a write to DynamoDB still fails after botocore's retries, the whole interaction is
logged (logger ``sessions.replay``) as ``SKYMARSHAL_REPLAY <token>``, where the token is
the interaction encrypted with a key derived from SECRET_KEY (Fernet: AES-CBC with an
HMAC): the record holds the prompt, which no log line may show in the clear.
``manage.py sessions_replay_log FILE`` finds these lines in any log export (plain lines or
JSON lines), decrypts them and writes them back idempotently.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

REPLAY_MARKER = "SKYMARSHAL_REPLAY"
_TOKEN = re.compile(REPLAY_MARKER + r" ([A-Za-z0-9_\-=]+)")


def _fernet() -> Fernet:
    digest = hashlib.sha256(f"skymarshal.sessions.replay:{settings.SECRET_KEY}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def replay_record_encode(record: dict[str, Any]) -> str:
    """The log message for ``record``."""
    token = _fernet().encrypt(json.dumps(record, separators=(",", ":")).encode()).decode()
    return f"{REPLAY_MARKER} {token}"


class ReplayRecordUnreadable(ValueError):
    pass


def replay_records_find(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Every replay record in ``lines``; raises ReplayRecordUnreadable for a record that
    does not decrypt (another SECRET_KEY, or a damaged line)."""
    for number, line in enumerate(lines, start=1):
        for match in _TOKEN.finditer(line):
            try:
                payload = _fernet().decrypt(match.group(1).encode())
            except InvalidToken:
                raise ReplayRecordUnreadable(
                    f"line {number}: the replay record does not decrypt with this SECRET_KEY"
                ) from None
            yield json.loads(payload)
