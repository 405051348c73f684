"""Which identity owns a caller's sessions and runs (IDENTITY_MODE).

The IAM authorizer of an API Gateway REST API hands the integration the verified caller as
``requestContext.identity``: ``userArn``, ``user`` and ``caller`` (for a role session both
are ``ROLE_ID:SESSION_NAME``), ``accountId``, ``accessKey``, ``principalOrgId``, the
``cognito*`` fields (null unless the request was signed with Cognito credentials),
``sourceIp``, ``userAgent``, ``apiKey``/``apiKeyId`` (API Gateway developer guide, "Variables
for data transformations for API Gateway", ``$context.identity.*``). It carries no STS
source identity, so the owner cannot be the source identity: ``source_identity`` is refused
at start (settings.py) with what to do instead.

What ``userArn`` looks like, by kind of caller (IAM User Guide, "IAM identifiers"):

- IAM user: ``arn:aws:iam::ACCOUNT:user/PATH/NAME``
- root: ``arn:aws:iam::ACCOUNT:root``
- role session (AssumeRole, AssumeRoleWithSAML, AssumeRoleWithWebIdentity, IAM Identity
  Center): ``arn:aws:sts::ACCOUNT:assumed-role/ROLE_NAME/SESSION_NAME``. The session name
  is whatever the caller of AssumeRole chose unless the role's trust policy pins it
  (``sts:RoleSessionName``); the role's path is not in it.
- federated user (GetFederationToken): ``arn:aws:sts::ACCOUNT:federated-user/NAME``

Modes:

- ``role`` (the default): a role session is owned by its role,
  ``arn:PARTITION:iam::ACCOUNT:role/ROLE_NAME`` (the path left out: the session ARN does not
  carry it, and a role's name is unique in its account whatever its path), so everyone
  who can assume the role shares, and no session name can be borrowed or lost. Roles whose
  session names are set by AWS rather than by the caller (IDENTITY_TRUSTED_SESSION_ROLES,
  by default IAM Identity Center's ``AWSReservedSSO_*``) keep one owner per session name.
- ``session``: every session ARN is its own owner; safe only where every role that may
  call the API pins its session names in its trust policy.

IAM users, root and federated users are their own ARN in every mode.

Pure functions, no Django: authentication.py passes the settings in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

IdentityMode = Literal["role", "session"]
IDENTITY_MODES: tuple[IdentityMode, ...] = ("role", "session")
CallerKind = Literal["iam_user", "root", "role", "role_session", "federated_user", "other"]

# IAM's own form of a role name (CreateRole's RoleName), with the wildcards * and ?.
_ROLE_PATTERN = re.compile(r"^[\w+=,.@*?-]{1,64}$")
_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):(?P<service>iam|sts)::(?P<account>\d{12}):(?P<resource>.+)$"
)


@dataclass(frozen=True)
class CallerArn:
    """An IAM principal's ARN taken apart."""

    arn: str
    kind: CallerKind
    partition: str = "aws"
    account_id: str | None = None
    role_name: str | None = None
    session_name: str | None = None

    @property
    def role_arn(self) -> str | None:
        """The role of a role session, without its path (the session ARN has none)."""
        if self.kind != "role_session" or self.role_name is None:
            return None
        return f"arn:{self.partition}:iam::{self.account_id}:role/{self.role_name}"


def caller_arn_parse(arn: str) -> CallerArn:
    """``arn`` taken apart; an ARN of no principal form this module knows is kind ``other``."""
    match = _ARN.match(arn)
    if match is None:
        return CallerArn(arn=arn, kind="other")
    partition, service = match["partition"], match["service"]
    account, resource = match["account"], match["resource"]
    base = {"arn": arn, "partition": partition, "account_id": account}
    if service == "iam":
        if resource == "root":
            return CallerArn(kind="root", **base)
        if resource.startswith("user/") and not resource.endswith("/"):
            return CallerArn(kind="iam_user", **base)
        if resource.startswith("role/") and not resource.endswith("/"):
            return CallerArn(kind="role", role_name=resource.rsplit("/", 1)[1], **base)
        return CallerArn(kind="other", **base)
    parts = resource.split("/")
    if parts[0] == "assumed-role" and len(parts) == 3 and parts[1] and parts[2]:
        return CallerArn(kind="role_session", role_name=parts[1], session_name=parts[2], **base)
    if parts[0] == "federated-user" and len(parts) == 2 and parts[1]:
        return CallerArn(kind="federated_user", **base)
    return CallerArn(kind="other", **base)


def trusted_session_roles_parse(patterns: Sequence[str]) -> tuple[str, ...]:
    """Role-name patterns (``*`` and ``?`` as wildcards); raises ValueError naming the bad one."""
    for pattern in patterns:
        if not _ROLE_PATTERN.match(pattern):
            raise ValueError(
                f"IDENTITY_TRUSTED_SESSION_ROLES: {pattern!r} is not a role name or a pattern "
                "of one (letters, digits, +=,.@_- and the wildcards * and ?; at most 64 "
                "characters; a name, not an ARN)"
            )
    return tuple(patterns)


def session_name_trusted(caller: CallerArn, trusted_session_roles: Sequence[str]) -> bool:
    """Whether ``caller`` is a session of a role whose session names the caller cannot choose."""
    return caller.kind == "role_session" and any(
        fnmatchcase(caller.role_name or "", pattern) for pattern in trusted_session_roles
    )


def owner_identity(arn: str, *, mode: str, trusted_session_roles: Sequence[str] = ()) -> str:
    """The identity that owns what the caller ``arn`` creates, and is checked on every read
    and cancel of it, under ``mode`` (an IdentityMode; raises ValueError for another)."""
    if mode not in IDENTITY_MODES:
        raise ValueError(f"IDENTITY_MODE must be one of {', '.join(IDENTITY_MODES)}; got {mode!r}")
    caller = caller_arn_parse(arn)
    if mode == "session" or caller.kind != "role_session":
        return arn
    if session_name_trusted(caller, trusted_session_roles):
        return arn
    return caller.role_arn or arn
