"""skymarshal_api/auth/identity.py: what owns a caller's sessions and runs, for every form of
IAM principal API Gateway's IAM authorizer passes as requestContext.identity.userArn; and
the IDENTITY_* settings, which refuse what cannot work."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skymarshal_api.auth.identity import (
    caller_arn_parse,
    owner_identity,
    trusted_session_roles_parse,
)
from tests.skymarshal_api.test_settings import _load_settings

ACCOUNT = "123456789012"
SSO_ROLE = "AWSReservedSSO_OpsController_0123456789abcdef"
TRUSTED = ("AWSReservedSSO_*",)

IAM_USER = f"arn:aws:iam::{ACCOUNT}:user/jane"
IAM_USER_WITH_PATH = f"arn:aws:iam::{ACCOUNT}:user/division/ops/jane"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
FEDERATED = f"arn:aws:sts::{ACCOUNT}:federated-user/jane"
ROLE_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/ops-controller/jane"
BORROWED = f"arn:aws:sts::{ACCOUNT}:assumed-role/ops-controller/omar"
SSO_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/{SSO_ROLE}/jane.doe@example.com"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ops-controller"


@pytest.mark.parametrize(
    ("arn", "role_mode", "session_mode"),
    [
        (IAM_USER, IAM_USER, IAM_USER),
        (IAM_USER_WITH_PATH, IAM_USER_WITH_PATH, IAM_USER_WITH_PATH),
        (ROOT, ROOT, ROOT),
        (FEDERATED, FEDERATED, FEDERATED),
        (ROLE_SESSION, ROLE, ROLE_SESSION),
        (SSO_SESSION, SSO_SESSION, SSO_SESSION),
        # Other partitions keep theirs.
        (
            "arn:aws-cn:sts::123456789012:assumed-role/ops/jane",
            "arn:aws-cn:iam::123456789012:role/ops",
            "arn:aws-cn:sts::123456789012:assumed-role/ops/jane",
        ),
        (
            "arn:aws-us-gov:sts::123456789012:assumed-role/ops/jane",
            "arn:aws-us-gov:iam::123456789012:role/ops",
            "arn:aws-us-gov:sts::123456789012:assumed-role/ops/jane",
        ),
        # A role ARN (a local key may name one) and forms of no known principal stay as they are.
        (ROLE, ROLE, ROLE),
        ("arn:aws:sts::123456789012:assumed-role/ops", None, None),
        ("not-an-arn", None, None),
    ],
)
def test_each_kind_of_caller_has_its_owner_in_each_mode(
    arn: str, role_mode: str | None, session_mode: str | None
) -> None:
    assert owner_identity(arn, mode="role", trusted_session_roles=TRUSTED) == (role_mode or arn)
    assert owner_identity(arn, mode="session", trusted_session_roles=TRUSTED) == (
        session_mode or arn
    )


def test_in_role_mode_two_session_names_of_one_role_are_one_owner() -> None:
    assert owner_identity(ROLE_SESSION, mode="role") == owner_identity(BORROWED, mode="role")
    assert owner_identity(ROLE_SESSION, mode="session") != owner_identity(BORROWED, mode="session")


def test_in_role_mode_a_borrowed_session_name_is_not_the_identity_center_user() -> None:
    # Whoever can assume ops-controller may call its session jane.doe@example.com: that
    # makes it ops-controller, never the Identity Center user of that name.
    borrowed = f"arn:aws:sts::{ACCOUNT}:assumed-role/ops-controller/jane.doe@example.com"
    owner = owner_identity(borrowed, mode="role", trusted_session_roles=TRUSTED)
    assert owner == ROLE
    assert owner != owner_identity(SSO_SESSION, mode="role", trusted_session_roles=TRUSTED)


def test_identity_center_users_of_one_permission_set_stay_apart_in_role_mode() -> None:
    other = f"arn:aws:sts::{ACCOUNT}:assumed-role/{SSO_ROLE}/omar@example.com"
    assert owner_identity(SSO_SESSION, mode="role", trusted_session_roles=TRUSTED) != (
        owner_identity(other, mode="role", trusted_session_roles=TRUSTED)
    )
    # Without the trusted pattern the permission set's role owns both.
    assert owner_identity(SSO_SESSION, mode="role", trusted_session_roles=()) == (
        f"arn:aws:iam::{ACCOUNT}:role/{SSO_ROLE}"
    )


def test_a_role_of_the_same_name_in_another_account_is_another_owner() -> None:
    elsewhere = "arn:aws:sts::210987654321:assumed-role/ops-controller/jane"
    assert owner_identity(elsewhere, mode="role") == "arn:aws:iam::210987654321:role/ops-controller"
    assert owner_identity(elsewhere, mode="role") != owner_identity(ROLE_SESSION, mode="role")


def test_a_session_arn_is_taken_apart() -> None:
    caller = caller_arn_parse(SSO_SESSION)
    assert caller.kind == "role_session"
    assert caller.account_id == ACCOUNT
    assert caller.role_name == SSO_ROLE
    assert caller.session_name == "jane.doe@example.com"
    assert caller.role_arn == f"arn:aws:iam::{ACCOUNT}:role/{SSO_ROLE}"
    assert [caller_arn_parse(arn).kind for arn in (IAM_USER, ROOT, FEDERATED, ROLE)] == [
        "iam_user",
        "root",
        "federated_user",
        "role",
    ]


# The alphabet IAM allows in role names (CreateRole) and role session names (AssumeRole).
_NAME = st.text("abcXYZ019+=,.@_-", min_size=2, max_size=64)


@given(role=_NAME, first=_NAME, second=_NAME)
def test_whatever_the_names_a_session_name_decides_nothing_in_role_mode(
    role: str, first: str, second: str
) -> None:
    """In role mode two sessions of one role have one owner, the role, and a session of
    another role never has it; in session mode two session names are two owners."""

    def session(role_name: str, name: str) -> str:
        return f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{name}"

    owner = owner_identity(session(role, first), mode="role", trusted_session_roles=TRUSTED)
    assert owner == f"arn:aws:iam::{ACCOUNT}:role/{role}"
    assert owner == owner_identity(session(role, second), mode="role")
    assert owner != owner_identity(session(f"{role}x", first), mode="role")
    in_session_mode = {owner_identity(session(role, n), mode="session") for n in (first, second)}
    assert len(in_session_mode) == len({first, second})


@pytest.mark.parametrize(
    "pattern", ["arn:aws:iam::123456789012:role/ops", "ops controller", "x" * 65, "ops/*"]
)
def test_a_trusted_role_pattern_must_be_a_role_name(pattern: str) -> None:
    with pytest.raises(ValueError, match="IDENTITY_TRUSTED_SESSION_ROLES"):
        trusted_session_roles_parse([pattern])


def test_settings_default_to_role_mode_trusting_identity_center_session_names() -> None:
    result = _load_settings(
        {"SKYMARSHAL_ENV": "test"},
        show="settings.IDENTITY_MODE, settings.IDENTITY_TRUSTED_SESSION_ROLES",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "role ('AWSReservedSSO_*',)"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"IDENTITY_MODE": "source_identity"},
            "API Gateway does not pass the STS source identity",
        ),
        ({"IDENTITY_MODE": "user"}, "IDENTITY_MODE must be one of role, session"),
        (
            {"IDENTITY_TRUSTED_SESSION_ROLES": "AWSReservedSSO_*,arn:aws:iam::1:role/x"},
            "IDENTITY_TRUSTED_SESSION_ROLES: 'arn:aws:iam::1:role/x' is not a role name",
        ),
    ],
)
def test_settings_refuse_an_identity_setting_that_cannot_work(
    env: dict[str, str], message: str
) -> None:
    result = _load_settings({"SKYMARSHAL_ENV": "test", **env})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr.splitlines()[-1]


def test_an_unknown_mode_is_refused_not_taken_for_one() -> None:
    with pytest.raises(ValueError, match="IDENTITY_MODE must be one of role, session"):
        owner_identity(ROLE_SESSION, mode="source_identity")
