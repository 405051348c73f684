"""Replay records: an interaction the sessions table could not take, as one log line.

When a write to DynamoDB still fails after botocore's retries, the whole interaction is
logged (logger ``sessions.replay``) as ``SKYMARSHAL_REPLAY <token>``, where the token is
the interaction encrypted with a key derived from SECRET_KEY (Fernet: AES-CBC with an
HMAC): the record holds the prompt, which no log line may show in the clear.
A token too long for one CloudWatch Logs event (256 KB) is logged as numbered parts
(``SKYMARSHAL_REPLAY_PART``), one line each, joined again when read.
``manage.py sessions_replay_log FILE`` finds these lines in any log export (plain lines or
JSON lines), decrypts them and writes them back idempotently; a line it cannot read is
reported and skipped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings

REPLAY_MARKER = "SKYMARSHAL_REPLAY"
REPLAY_PART_MARKER = "SKYMARSHAL_REPLAY_PART"
# CloudWatch Logs takes events of at most 256 KB (PutLogEvents: "Each log event can be no
# larger than 256 KB"); a longer line is cut, and its record lost. A token longer than this
# is written as parts of this many characters, each on a line of its own with room to
# spare for the rest of the JSON line (keys, timestamp, request ids).
REPLAY_PART_CHARACTERS = 192 * 1024
_BASE64URL = r"[A-Za-z0-9_\-=]"
_ANY_MARKER = re.compile(REPLAY_MARKER + r"(?:_PART)?\b")
_TOKEN = re.compile(REPLAY_MARKER + rf" ({_BASE64URL}+)")
_PART = re.compile(
    REPLAY_PART_MARKER + rf" ([0-9a-f]{{32}}) ([0-9]{{1,6}})/([0-9]{{1,6}}) ({_BASE64URL}+)"
)


if TYPE_CHECKING:
    from cryptography.fernet import Fernet


def _fernet() -> Fernet:
    # Imported when a record is written or read, never in a start-up (about 15 ms).
    from cryptography.fernet import Fernet

    digest = hashlib.sha256(f"skymarshal.sessions.replay:{settings.SECRET_KEY}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def replay_record_messages(record: dict[str, Any]) -> list[str]:
    """The log messages for ``record``, to be logged in order, one line each: one
    ``SKYMARSHAL_REPLAY <token>``, or, for a token above REPLAY_PART_CHARACTERS,
    ``SKYMARSHAL_REPLAY_PART <id> <n>/<total> <piece>`` lines that the reader joins again."""
    token = _fernet().encrypt(json.dumps(record, separators=(",", ":")).encode()).decode()
    if len(token) <= REPLAY_PART_CHARACTERS:
        return [f"{REPLAY_MARKER} {token}"]
    pieces = [
        token[start : start + REPLAY_PART_CHARACTERS]
        for start in range(0, len(token), REPLAY_PART_CHARACTERS)
    ]
    group = uuid.uuid4().hex
    return [
        f"{REPLAY_PART_MARKER} {group} {number}/{len(pieces)} {piece}"
        for number, piece in enumerate(pieces, start=1)
    ]


def replay_record_encode(record: dict[str, Any]) -> str:
    """The one log message for a record small enough to need no parts."""
    [message] = replay_record_messages(record)
    return message


@dataclass(frozen=True)
class ReplayRecordFound:
    line: int  # its (last) line
    record: dict[str, Any]


@dataclass(frozen=True)
class ReplayLineUnreadable:
    line: int
    reason: str


class _Parts:
    def __init__(self, total: int) -> None:
        self.total = total
        self.pieces: dict[int, tuple[int, str]] = {}  # part number → (line, piece)


def replay_log_read(lines: Iterable[str]) -> Iterator[ReplayRecordFound | ReplayLineUnreadable]:
    """Every replay record in ``lines`` (a log export, plain or JSON lines), and every line
    that holds one that cannot be read: a token that does not decrypt (another SECRET_KEY,
    a damaged line), a payload that is not a JSON object, a marker without a token, parts
    of a record that never complete. Reading goes on past a bad line."""
    groups: dict[str, _Parts] = {}
    for number, line in enumerate(lines, start=1):
        if _ANY_MARKER.search(line) is None:
            continue
        found = False
        for match in _TOKEN.finditer(line):
            found = True
            yield _decoded(number, match.group(1))
        for match in _PART.finditer(line):
            found = True
            group, part, total, piece = match.groups()
            parts = groups.setdefault(group, _Parts(int(total)))
            if int(total) != parts.total or not 1 <= int(part) <= parts.total:
                yield ReplayLineUnreadable(number, "a replay part that does not fit its record")
                continue
            parts.pieces[int(part)] = (number, piece)
            if len(parts.pieces) == parts.total:
                del groups[group]
                token = "".join(parts.pieces[n][1] for n in range(1, parts.total + 1))
                yield _decoded(number, token)
        if not found:
            yield ReplayLineUnreadable(number, "a replay marker without a readable token")
    for parts in groups.values():
        missing = parts.total - len(parts.pieces)
        for line_number, _ in sorted(parts.pieces.values()):
            yield ReplayLineUnreadable(
                line_number, f"part of a replay record whose other {missing} part(s) are missing"
            )


def _decoded(line: int, token: str) -> ReplayRecordFound | ReplayLineUnreadable:
    from cryptography.fernet import InvalidToken

    try:
        payload = _fernet().decrypt(token.encode())
    except InvalidToken:
        return ReplayLineUnreadable(
            line, "the replay record does not decrypt with this SECRET_KEY (or is damaged)"
        )
    try:
        record = json.loads(payload)
    except ValueError:
        return ReplayLineUnreadable(line, "the replay record is not JSON")
    if not isinstance(record, dict):
        return ReplayLineUnreadable(line, "the replay record is not a JSON object")
    return ReplayRecordFound(line, record)
