"""Creating the sessions table where it is missing, and checking the key schema of one that
exists."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from sessions.models import USER_SESSIONS_INDEX, SessionInteraction
from sessions.services import aws_error_code
from skymarshal_api.web.errors import InternalError, StorageUnavailable

logger = logging.getLogger(__name__)


_EXPECTED_KEYS = {"session_id": "HASH", "timestamp": "RANGE"}


_EXPECTED_INDEX_KEYS = {"user_id": "HASH", "timestamp": "RANGE"}


@dataclass(frozen=True)
class TableEnsured:
    table_name: str
    created: bool
    ttl_enabled_now: bool


def sessions_table_ensure() -> TableEnsured:
    """Create the sessions table (keys, GSI, on-demand billing) and enable TTL on ``ttl``.

    Idempotent: an existing table is checked against the expected schema and left as it is.
    Raises StorageUnavailable when DynamoDB cannot be reached, and InternalError when an
    existing table has another schema (it is never altered or dropped).
    """
    table_name = SessionInteraction.Meta.table_name
    try:
        created = not SessionInteraction.exists()
        if created:
            # ignore_update_ttl_errors: TTL is enabled below, after checking its state.
            SessionInteraction.create_table(wait=True, ignore_update_ttl_errors=True)
        description = SessionInteraction.describe_table()
        _check_schema(table_name, description)
        client: Any = SessionInteraction._get_connection().connection.client
        ttl = client.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
        ttl_enabled_now = ttl.get("TimeToLiveStatus") in (None, "DISABLED")
        if ttl_enabled_now:
            client.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
            )
    except PynamoDBException as exc:
        raise StorageUnavailable(
            f"Could not ensure table {table_name}: {exc.msg}",
            details={"aws_error_code": aws_error_code(exc)},
        ) from exc
    except ClientError as exc:  # the TTL calls go to botocore directly
        raise StorageUnavailable(
            f"Could not ensure table {table_name}: {exc}",
            details={"aws_error_code": exc.response.get("Error", {}).get("Code")},
        ) from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(f"Could not ensure table {table_name}: {exc}") from exc
    return TableEnsured(table_name=table_name, created=created, ttl_enabled_now=ttl_enabled_now)


def _key_schema(elements: list[dict[str, str]]) -> dict[str, str]:
    return {element["AttributeName"]: element["KeyType"] for element in elements}


def _check_schema(table_name: str, description: dict[str, Any]) -> None:
    keys = _key_schema(description.get("KeySchema", []))
    if keys != _EXPECTED_KEYS:
        raise InternalError(
            f"Table {table_name} exists with keys {keys}; expected {_EXPECTED_KEYS}. "
            "Point SESSION_TABLE_NAME at another table or migrate this one."
        )
    indexes = {
        index["IndexName"]: _key_schema(index["KeySchema"])
        for index in description.get("GlobalSecondaryIndexes", [])
    }
    if indexes.get(USER_SESSIONS_INDEX) != _EXPECTED_INDEX_KEYS:
        raise InternalError(
            f"Table {table_name} lacks GSI {USER_SESSIONS_INDEX} on user_id + timestamp; "
            "add it, or point SESSION_TABLE_NAME at another table."
        )
